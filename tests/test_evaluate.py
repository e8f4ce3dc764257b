"""experiments.evaluate reads a training workdir and evaluates its latest readable
checkpoint into a directory of its own, changing nothing of the training run."""
import hashlib
import json

from absl import app
from absl.testing import flagsaver
import pytest

import train_testing
from experiments import evaluate
from experiments.configs import prior_digits
from vqjax.runner import prior_task, tokenizer_task, workdir as workdir_lib


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return train_testing.prepare_digits(str(tmp_path_factory.mktemp("tfds")))


def _hashes(directory):
  return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(directory.rglob("*")) if p.is_file()}


def test_evaluates_into_its_own_directory_and_changes_nothing_else(data_dir, tmp_path, capsys):
  config = train_testing.tiny_config(data_dir, num_steps=3, checkpoint_every_steps=2)
  trained = tokenizer_task.train_tokenizer(config, str(tmp_path))
  before = _hashes(tmp_path)

  evaluate.FLAGS(["evaluate", f"--workdir={tmp_path}"])
  evaluate.main(["evaluate"])
  out = capsys.readouterr()
  printed = json.loads(out.out)
  assert printed == pytest.approx(trained)
  assert set(printed) >= {"mse", "psnr", "normalized_mse", "perplexity", "codes_used_fraction"}
  directory = tmp_path / "evaluations" / "step_3"
  assert f"step 3 of {tmp_path}" in out.err and str(directory) in out.err
  assert json.loads((directory / "metrics.json").read_text()) == printed
  assert (directory / "reconstructions.png").exists()
  after = _hashes(tmp_path)
  assert {k: v for k, v in after.items() if not k.startswith("evaluations/")} == before

  # Again: a new directory, the first kept.
  again = tokenizer_task.evaluate_latest(str(tmp_path))
  assert again.directory == str(tmp_path / "evaluations" / "step_3-1")
  assert _hashes(directory) == {k[len("evaluations/step_3/"):]: v for k, v in after.items()
                                if k.startswith("evaluations/step_3/")}

  # A damaged latest checkpoint is skipped, not moved: step 2 is evaluated.
  array_file = max((p for p in (tmp_path / "checkpoints" / "3").rglob("*") if p.is_file()
                    and "/d/" in str(p)), key=lambda p: p.stat().st_size)
  array_file.write_bytes(b"\x00garbage" * 8)
  damaged = _hashes(tmp_path / "checkpoints")
  assert tokenizer_task.evaluate_latest(str(tmp_path)).step == 2
  assert _hashes(tmp_path / "checkpoints") == damaged
  assert not (tmp_path / "checkpoints.corrupt").exists()


def test_a_workdir_without_a_run(tmp_path):
  with pytest.raises(ValueError, match="config.json does not exist"):
    tokenizer_task.evaluate_workdir(str(tmp_path))


def test_a_missing_workdir(tmp_path):
  with pytest.raises(ValueError, match="missing does not exist; pass the --workdir"):
    tokenizer_task.evaluate_workdir(str(tmp_path / "missing"))


def test_a_workdir_that_is_a_file(tmp_path):
  (tmp_path / "file").write_text("")
  with pytest.raises(ValueError, match="is a file, not a directory"):
    tokenizer_task.evaluate_workdir(str(tmp_path / "file"))


def test_a_priors_workdir(tmp_path):
  config = prior_digits.get_config("tiny")
  config.tokenizer_workdir = "/nonexistent/tokenizer"
  workdir_lib.save_config(config, str(tmp_path))
  with pytest.raises(ValueError, match="holds a prior's run .*, not a tokenizer's; pass the "
                                       "--workdir of experiments.train"):
    tokenizer_task.evaluate_workdir(str(tmp_path))


def test_training_into_a_file_is_an_error(data_dir, tmp_path):
  (tmp_path / "file").write_text("")
  with pytest.raises(ValueError, match="--workdir=.*file is a file, not a directory"):
    tokenizer_task.train_tokenizer(train_testing.tiny_config(data_dir), str(tmp_path / "file"))


def test_a_priors_workdir_is_evaluated_for_nll_and_samples(tmp_path, capsys):
  data_dir = train_testing.prepare_digits(str(tmp_path / "tfds"))
  tokenizer_task.train_tokenizer(train_testing.tiny_config(data_dir, num_steps=1),
                                 str(tmp_path / "tokenizer"))
  config = prior_digits.get_config("tiny")
  config.update(tokenizer_workdir=str(tmp_path / "tokenizer"))
  config.data.eval_split = "test[:16]"
  config.train.update(num_steps=1, num_samples=4)
  trained = prior_task.train_prior(config, str(tmp_path / "prior"))
  capsys.readouterr()  # what preparing the data printed

  evaluate.FLAGS(["evaluate", f"--workdir={tmp_path / 'prior'}"])
  evaluate.main(["evaluate"])
  printed = json.loads(capsys.readouterr().out)
  assert printed == pytest.approx(trained)
  directory = tmp_path / "prior" / "evaluations" / "step_1"
  assert (directory / "samples.png").exists()
  assert json.loads((directory / "metrics.json").read_text()) == printed


@pytest.mark.parametrize("flags, kind, message", [
    (["--lpips"], "prior", "--lpips is for tokenizers"),
    (["--fid", "--fid_images=8"], "prior", "--fid_images is for tokenizers"),
    (["--fid", "--fid_samples=8"], "tokenizer", "--fid_samples is for priors"),
    (["--fid_images=8"], "tokenizer", "takes effect with --fid"),
    (["--fid", "--fid_images=1"], "tokenizer", "at least 2 images"),
    (["--guidance_scale=2"], "tokenizer", "--guidance_scale is for priors"),
])
def test_flags_the_workdir_does_not_take_are_usage_errors(tmp_path, flags, kind, message):
  config = prior_digits.get_config("tiny")
  if kind == "prior":
    config.tokenizer_workdir = "/nonexistent/tokenizer"
  else:
    config = train_testing.tiny_config(str(tmp_path))
  workdir_lib.save_config(config, str(tmp_path))
  with flagsaver.flagsaver():  # these flags' values and presence are undone after
    evaluate.FLAGS(["evaluate", f"--workdir={tmp_path}", *flags])
    with pytest.raises(app.UsageError, match=message):
      evaluate.main(["evaluate"])
