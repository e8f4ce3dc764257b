"""One training step of each model, end to end, on a catalogue dataset mocked by TFDS."""
import json
import pathlib

import pytest
import tensorflow_datasets as tfds

from experiments.configs import cifar10
from vqjax.train import loop


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
  config.train.update(num_steps=1, checkpoint_every_steps=1)
  workdir = tmp_path / "run"
  with tfds.testing.mock_data(num_examples=16, data_dir=data_dir):
    metrics = loop.train_and_evaluate(config, str(workdir))
  assert metrics["step"] == 1 and metrics["examples"] == 16
  assert json.loads((workdir / "metrics.json").read_text())["mse"] == pytest.approx(metrics["mse"])
  assert (workdir / "checkpoints" / "1").is_dir()
  assert (workdir / "reconstructions.png").exists()
