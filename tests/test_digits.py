"""The built-in digits dataset: registered on import, prepared offline into any data_dir."""
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
