"""The prior loop: a step on the token grids of a tokenizer trained a step on the digits
writes metrics.json (NLL per token, bits per image dimension) and samples.png, and a
restart resumes from its checkpoint; the workdir restores for experiments.sample."""
import json
import math
import os

import numpy as np
import pytest

import train_testing
from experiments.configs import prior_digits
from vqjax.runner import prior_task, tokenizer_task, workdir as workdir_lib


@pytest.fixture(scope="module")
def tokenizer_workdir(tmp_path_factory):
  data_dir = train_testing.prepare_digits(str(tmp_path_factory.mktemp("tfds")))
  config = train_testing.tiny_config(data_dir, num_steps=1, log_every_steps=1,
                                     checkpoint_every_steps=1)
  config.data.eval_split = "test[:100]"  # keeps the tokenizer's evaluation short
  workdir = str(tmp_path_factory.mktemp("tokenizer"))
  tokenizer_task.train_tokenizer(config, workdir)
  return workdir


def _config(tokenizer_workdir, **train):
  config = prior_digits.get_config("tiny")
  config.tokenizer_workdir = tokenizer_workdir
  config.data.eval_split = "test[:100]"
  config.train.update(num_samples=4, log_every_steps=1, checkpoint_every_steps=1, **train)
  return config


def test_one_step_writes_metrics_and_samples_then_resumes(tokenizer_workdir, tmp_path):
  workdir = str(tmp_path / "prior")
  metrics = prior_task.train_prior(_config(tokenizer_workdir, num_steps=1), workdir)

  written = json.loads((tmp_path / "prior" / "metrics.json").read_text())
  assert written == metrics and written["step"] == 1 and written["num_examples"] == 100
  # A fresh prior is near uniform over the tokenizer's 32 codes.
  assert abs(written["nll_nats_per_token"] - math.log(32)) < 0.5
  # bits/dim: a 4x4 grid's NLL in bits over the 8x8x1 image.
  np.testing.assert_allclose(written["bits_per_dim"],
                             written["nll_nats_per_token"] * 16 / math.log(2) / 64, rtol=1e-5)
  assert os.path.getsize(tmp_path / "prior" / "samples.png") > 0

  resumed = prior_task.train_prior(
      _config(tokenizer_workdir, num_steps=2, allow_config_change=True), workdir)
  assert resumed["step"] == 2
  checkpoints = workdir_lib.checkpoints_of(workdir, _config(tokenizer_workdir))
  try:
    assert checkpoints.all_steps() == [1, 2]
  finally:
    checkpoints.close()

  run, state = prior_task.restore_prior_workdir(workdir)
  samples = prior_task.sample_images(run, state, np.array([0, 1], np.uint32), num_samples=3,
                                     labels=np.full(3, 7), temperature=0.5, top_k=5)
  assert samples.shape == (3, 8, 8, 1) and np.all(np.isfinite(samples))
  with pytest.raises(ValueError, match=r"outside \[0, 10\)"):
    prior_task.sample_images(run, state, np.array([0, 1], np.uint32), num_samples=2,
                             labels=np.array([3, 12]))


def test_level_and_top_prior_are_for_vqvae2_tokenizers_only(tokenizer_workdir):
  config = _config(tokenizer_workdir)
  config.level = "top"
  with pytest.raises(ValueError, match="one grid per image; unset config.level"):
    prior_task.prepare_prior(config)
  config.level = None
  config.top_prior_workdir = tokenizer_workdir
  with pytest.raises(ValueError, match="top_prior_workdir is set.*unset it"):
    prior_task.prepare_prior(config)


def _fake_workdir(directory, config):
  os.makedirs(directory, exist_ok=True)
  workdir_lib.save_config(config, str(directory))
  return str(directory)


def test_a_priors_workdir_as_the_tokenizer_is_an_error(tmp_path):
  prior = _fake_workdir(tmp_path / "prior", _config("/nonexistent/tokenizer"))
  with pytest.raises(ValueError, match="holds a prior's run, not a tokenizer's; pass the "
                                       "--workdir of experiments.train"):
    prior_task.train_prior(_config(prior), str(tmp_path / "prior2"))


def test_a_tokenizers_workdir_is_not_a_prior(tmp_path):
  tokenizer = _fake_workdir(tmp_path / "tokenizer", train_testing.tiny_config(str(tmp_path)))
  with pytest.raises(ValueError, match="holds a tokenizer's run .*, not a prior's; pass the "
                                       "--workdir of experiments.train_prior"):
    prior_task.restore_prior_workdir(tokenizer)


def test_training_a_prior_into_a_file_is_an_error(tmp_path):
  (tmp_path / "file").write_text("")
  with pytest.raises(ValueError, match="--workdir=.*file is a file, not a directory"):
    prior_task.train_prior(_config("/nonexistent/tokenizer"), str(tmp_path / "file"))


def test_no_samples_is_an_error_before_anything_loads():
  with pytest.raises(ValueError, match="num_samples is 0; sample at least one image"):
    prior_task.sample_images(None, None, None, num_samples=0)
