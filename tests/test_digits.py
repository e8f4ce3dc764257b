"""The built-in digits dataset: registered on import, prepared offline into any data_dir,
by two processes at once too."""
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds
from sklearn.datasets import load_digits

from vqjax import data
from vqjax.data import digits


@pytest.fixture(scope="module")
def builder(tmp_path_factory):
  builder = tfds.builder(digits.NAME, data_dir=str(tmp_path_factory.mktemp("tfds")))
  builder.download_and_prepare()
  return builder


def test_registered_on_import_under_a_name_the_catalogue_does_not_use():
  assert data.DEFAULT_DATASET == digits.NAME == "vqjax_digits"
  assert digits.NAME in tfds.list_builders(with_community_datasets=False)
  assert tfds.builder_cls(digits.NAME) is digits.VqjaxDigits


def test_prepares_1797_examples_in_fixed_splits(builder):
  assert builder.is_prepared()
  splits = builder.info.splits
  assert (splits["train"].num_examples, splits["test"].num_examples) == (1500, 297)
  features = builder.info.features
  assert features["image"].shape == (8, 8, 1)
  assert features["label"].num_classes == 10


def test_examples_are_sklearn_digits_scaled_to_0_255(builder):
  raw = load_digits()
  expected = np.floor(raw.images * 255 / 16 + 0.5).astype(np.uint8)[..., None]
  for split, rows in (("train", slice(0, 1500)), ("test", slice(1500, None))):
    examples = list(tfds.as_numpy(builder.as_dataset(split=split)))
    images = np.stack([example["image"] for example in examples])
    labels = np.array([example["label"] for example in examples])
    assert images.dtype == np.uint8 and images.shape[1:] == (8, 8, 1)
    assert images.max() == 255 and images.min() == 0
    # Stored order is TFDS's; compare as multisets of (label, image).
    got = sorted((int(label), image.tobytes()) for label, image in zip(labels, images))
    want = sorted((int(label), image.tobytes())
                  for label, image in zip(raw.target[rows], expected[rows]))
    assert got == want


def test_digits_arrays_scale_and_round():
  images, labels = digits.digits_arrays()
  assert images.shape == (1797, 8, 8, 1) and images.dtype == np.uint8
  assert labels.shape == (1797,)
  assert set(np.unique(images)) <= {int(np.floor(v * 255 / 16 + 0.5)) for v in range(17)}


PREPARE = r"""
import os, sys, time
from vqjax.data import sources
data_dir, ready, go = sys.argv[1:]
open(ready, "w").close()
while not os.path.exists(go):
  time.sleep(0.01)
builder = sources.get_builder("vqjax_digits", data_dir=data_dir, download=True)
print(builder.info.splits["train"].num_examples, builder.info.splits["test"].num_examples)
"""


def test_two_first_runs_at_once_prepare_one_fresh_data_dir(tmp_path):
  """Both processes start preparing the same missing dataset together: one prepares it
  under the lock, the other waits and reads it; neither crashes (it was FileExistsError)."""
  data_dir, go = tmp_path / "tfds", tmp_path / "go"
  env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "JAX_PLATFORMS": "cpu"}
  runs = [subprocess.Popen([sys.executable, "-c", PREPARE, str(data_dir),
                            str(tmp_path / f"ready{i}"), str(go)], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
          for i in range(2)]
  deadline = time.monotonic() + 240
  while not all((tmp_path / f"ready{i}").exists() for i in range(2)):
    assert time.monotonic() < deadline and all(run.poll() is None for run in runs)
    time.sleep(0.05)
  go.touch()  # both have imported TFDS: they reach the preparation together
  outputs = [run.communicate(timeout=240) for run in runs]
  for run, (stdout, stderr) in zip(runs, outputs):
    assert run.returncode == 0, stderr[-3000:]
    assert stdout.split()[-2:] == ["1500", "297"]  # after TFDS's own messages
  assert sorted(os.listdir(data_dir / "vqjax_digits")) == [".1.0.0.lock", "1.0.0"]
