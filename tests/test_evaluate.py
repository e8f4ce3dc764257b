"""experiments.evaluate reads a training workdir and evaluates its latest checkpoint."""
import json

import pytest

import train_testing
from experiments import evaluate
from vqjax.runner import tokenizer_task


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return train_testing.prepare_digits(str(tmp_path_factory.mktemp("tfds")))


def test_evaluates_the_latest_checkpoint_as_training_did(data_dir, tmp_path, capsys):
  config = train_testing.tiny_config(data_dir, num_steps=3)
  trained = tokenizer_task.train_tokenizer(config, str(tmp_path))
  (tmp_path / "metrics.json").unlink()
  (tmp_path / "reconstructions.png").unlink()

  evaluate.FLAGS(["evaluate", f"--workdir={tmp_path}"])
  evaluate.main(["evaluate"])
  printed = json.loads(capsys.readouterr().out)
  assert printed == pytest.approx(trained)
  assert set(printed) >= {"mse", "psnr", "normalized_mse", "perplexity", "codes_used_fraction"}
  assert json.loads((tmp_path / "metrics.json").read_text()) == printed
  assert (tmp_path / "reconstructions.png").exists()


def test_a_workdir_without_a_run(tmp_path):
  with pytest.raises(ValueError, match="config.json does not exist"):
    tokenizer_task.evaluate_workdir(str(tmp_path))
