"""One train step of each model on a catalogue dataset mocked by TFDS: config checks,
the input pipeline, model and optimizer construction, and the pmapped step.

Only the data comes from the mock; the whole loop with checkpoints is tested on the
built-in digits (test_train_loop.py), outside the mock's patches.
"""
import pathlib

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from experiments.configs import cifar10
from vqjax.train import parallel
from vqjax.runner import experiment


def _mock_metadata(data_dir: str, name: str, examples: int) -> None:
  """Mocked examples are random, but splits come from metadata in data_dir: write it."""
  builder = tfds.builder(name, data_dir=data_dir)
  builder.info.set_splits(tfds.core.SplitDict([
      tfds.core.SplitInfo(name=split, shard_lengths=[examples], num_bytes=0)
      for split in ("train", "test")]))
  pathlib.Path(builder.data_dir).mkdir(parents=True)
  builder.info.write_to_directory(builder.data_dir)


@pytest.mark.parametrize("model", ["vqvae", "vqvae2"])
def test_one_step_on_mocked_cifar10(tmp_path, model):
  data_dir = str(tmp_path / "tfds")
  _mock_metadata(data_dir, "cifar10", examples=16)
  config = cifar10.get_config("tiny")
  config.model.name = model
  config.data.update(data_dir=data_dir, batch_size=8, eval_batch_size=8, variance_examples=16)
  with tfds.testing.mock_data(num_examples=16, data_dir=data_dir):
    run = experiment.prepare(config)
    batch = next(experiment.train_batches(run, start_step=0))
  assert batch["image"].shape == (jax.local_device_count(), 8 // jax.device_count(), 32, 32, 3)
  state = run.init()
  state, metrics = parallel.train_step(run.model, run.optimizer.transform)(state, batch)
  assert int(jax.device_get(state.step)) == 1
  assert np.isfinite(float(metrics["loss"])) and float(metrics["loss"]) > 0
