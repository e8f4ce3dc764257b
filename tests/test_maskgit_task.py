"""A MaskGIT prior through the unchanged prior loop and entry points: one step on the
digits tokenizer's grids writes the masked-token metrics and samples.png, with its
sampler options from the config; experiments.sample samples it with guidance and its own
steps; a config.json from before guidance (no label_dropout_rate) samples as before and
refuses guidance with the fix named; MaskGIT options on a causal prior are refused."""
import json
import math
import os

import numpy as np
import pytest

import train_testing
from experiments import sample
from experiments.configs import prior_digits, prior_mnist_maskgit
from vqjax.runner import prior_task, tokenizer_task, workdir as workdir_lib


@pytest.fixture(scope="module")
def tokenizer_workdir(tmp_path_factory):
  data_dir = train_testing.prepare_digits(str(tmp_path_factory.mktemp("tfds")))
  config = train_testing.tiny_config(data_dir, num_steps=1, log_every_steps=1,
                                     checkpoint_every_steps=1)
  config.data.eval_split = "test[:100]"
  workdir = str(tmp_path_factory.mktemp("tokenizer"))
  tokenizer_task.train_tokenizer(config, workdir)
  return workdir


def _maskgit_config(tokenizer_workdir):
  config = prior_mnist_maskgit.get_config("tiny")  # MNIST's prior on the digits' grids
  config.tokenizer_workdir = tokenizer_workdir
  config.data.update(train_split="train", eval_split="test[:100]")
  config.train.update(num_steps=1, num_samples=4, log_every_steps=1,
                      checkpoint_every_steps=1, guidance_scale=2.0, maskgit_steps=4)
  return config


def test_a_maskgit_prior_trains_reports_masked_metrics_and_samples(tokenizer_workdir,
                                                                     tmp_path):
  workdir = str(tmp_path / "maskgit")
  metrics = prior_task.train_prior(_maskgit_config(tokenizer_workdir), workdir)
  written = json.loads((tmp_path / "maskgit" / "metrics.json").read_text())
  assert written == metrics and written["num_examples"] == 100
  for ratio in ("0.5", "0.9"):  # a fresh prior is near uniform over the 32 codes
    assert abs(written[f"masked_nll_{ratio}"] - math.log(32)) < 0.5
    assert 0 <= written[f"masked_accuracy_{ratio}"] <= 1
  assert "nll_nats_per_token" not in written
  assert os.path.getsize(tmp_path / "maskgit" / "samples.png") > 0

  path = sample.run(workdir, num_samples=3, label=4, guidance_scale=3.0, guidance_ramp=True,
                    maskgit_steps=5, choice_temperature=2.0, top_k=8,
                    output=str(tmp_path / "guided.png"))
  assert os.path.getsize(path) > 0
  run, state = prior_task.restore_prior_workdir(workdir)
  with pytest.raises(ValueError, match="num_steps \\(positions\\) is an option of causal"):
    prior_task.sample_images(run, state, np.array([0, 1], np.uint32), num_samples=2,
                             num_steps=3)


def test_sampling_settings_are_checked_before_training(tokenizer_workdir, tmp_path):
  config = _maskgit_config(tokenizer_workdir)
  config.model.label_dropout_rate = 0.0
  with pytest.raises(ValueError, match="config.train: guidance_scale was given.*no null class"):
    prior_task.train_prior(config, str(tmp_path / "refused"))
  assert not (tmp_path / "refused" / "checkpoints").exists()


def _causal_workdir(directory, **model):
  config = prior_digits.get_config("tiny")
  config.tokenizer_workdir = "/nonexistent/tokenizer"
  config.model.update(model)
  os.makedirs(directory, exist_ok=True)
  workdir_lib.save_config(config, str(directory))
  return str(directory)


def test_sampler_options_are_checked_against_the_saved_prior(tmp_path):
  workdir = _causal_workdir(tmp_path / "causal")
  with pytest.raises(ValueError, match="maskgit_steps are options of MaskGIT priors"):
    sample.run(workdir, maskgit_steps=8)
  old = _causal_workdir(tmp_path / "old")
  config = workdir_lib.load_config(old)
  del config.model["label_dropout_rate"]  # a prior trained before guidance
  workdir_lib.save_config(config, old)
  with pytest.raises(ValueError, match="has no null class.*label_dropout_rate=0.1"):
    sample.run(old, guidance_scale=2.0)
  with pytest.raises(ValueError, match="guidance_scale is -2"):
    sample.run(workdir, guidance_scale=-2.0)
