"""experiments.sample checks what it was asked before loading anything: each mistake is
a ValueError naming the fix, from the workdir's config.json alone (no run is trained)."""
import os

import pytest

import train_testing
from experiments import sample
from experiments.configs import prior_digits
from vqjax.runner import prior_sampling, workdir as workdir_lib


def _prior_workdir(directory, **model):
  config = prior_digits.get_config("tiny")
  config.tokenizer_workdir = "/nonexistent/tokenizer"
  config.model.update(model)
  os.makedirs(directory, exist_ok=True)
  workdir_lib.save_config(config, str(directory))
  return str(directory)


@pytest.fixture
def prior_workdir(tmp_path):
  return _prior_workdir(tmp_path / "prior")


@pytest.mark.parametrize("num_samples", [0, -3])
def test_no_samples_is_an_error(prior_workdir, num_samples):
  with pytest.raises(ValueError, match=f"num_samples is {num_samples}; sample at least one"):
    sample.run(prior_workdir, num_samples=num_samples)


@pytest.mark.parametrize("label", [10, -1])
def test_a_label_outside_the_classes_is_an_error(prior_workdir, label):
  with pytest.raises(ValueError, match=f"label {label} is not one of the 10 classes the prior "
                                       r"in .* was trained on; pass a label from 0 to 9"):
    sample.run(prior_workdir, label=label)


def test_a_label_for_an_unconditional_prior_is_an_error(tmp_path):
  workdir = _prior_workdir(tmp_path / "unconditional", num_classes=0)
  with pytest.raises(ValueError, match=r"unconditional \(config.model.num_classes=0\); drop "
                                       "--label"):
    sample.run(workdir, label=3)


def test_bad_sampling_settings_are_errors(prior_workdir):
  with pytest.raises(ValueError, match="top_k is 0; use top_k >= 1"):
    sample.run(prior_workdir, top_k=0)


def test_a_tokenizers_workdir_is_an_error(tmp_path):
  workdir_lib.save_config(train_testing.tiny_config(str(tmp_path)), str(tmp_path))
  with pytest.raises(ValueError, match="holds a tokenizer's run .*, not a prior's; pass the "
                                       "--workdir of experiments.train_prior"):
    sample.run(str(tmp_path))


def test_a_top_priors_workdir_is_an_error(tmp_path):
  config = prior_digits.get_config("tiny")
  config.update(tokenizer_workdir="/nonexistent/tokenizer", level="top")
  workdir_lib.save_config(config, str(tmp_path))
  with pytest.raises(ValueError, match="--top_prior_workdir=THIS_WORKDIR"):
    sample.run(str(tmp_path))
  assert "sample a bottom prior" in prior_sampling.TOP_PRIOR_ERROR


def test_an_empty_directory_is_an_error(tmp_path):
  with pytest.raises(ValueError, match="config.json does not exist; pass the --workdir"):
    sample.run(str(tmp_path))


def test_a_missing_workdir_is_an_error(tmp_path):
  with pytest.raises(ValueError, match="workdir .*/missing does not exist; pass the --workdir"):
    sample.run(str(tmp_path / "missing"))


def test_a_workdir_that_is_a_file_is_an_error(tmp_path):
  (tmp_path / "file").write_text("")
  with pytest.raises(ValueError, match="workdir .*/file is a file, not a directory"):
    sample.run(str(tmp_path / "file"))


def test_an_output_that_is_a_directory_is_an_error(prior_workdir, tmp_path):
  with pytest.raises(ValueError, match="is a directory; pass a file name"):
    sample.run(prior_workdir, output=str(tmp_path))


def test_an_output_in_a_missing_directory_is_an_error(prior_workdir, tmp_path):
  with pytest.raises(ValueError, match="its directory .*/nowhere does not exist"):
    sample.run(prior_workdir, output=str(tmp_path / "nowhere" / "samples.png"))
