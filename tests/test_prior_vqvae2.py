"""VQ-VAE-2 priors in the prior loop: over a VQ-VAE-2 trained a step on the digits (8x8
images, top grids 2x2 and bottom grids 4x4), a top prior and a bottom prior conditioned
on the top grid train a step each (prior_vqvae2_top.py and prior_vqvae2_bottom.py, tiny),
write finite test NLLs, resume, and the bottom prior's samples are decoded over top grids
sampled from the top prior; the mistakes in config.level and the model fail clearly."""
import json
import math
import os

import numpy as np
import pytest

import train_testing
from experiments.configs import prior_mnist_pixelcnn, prior_vqvae2_bottom, prior_vqvae2_top
from vqjax.runner import prior_sampling, prior_task, tokenizer_task


@pytest.fixture(scope="module")
def tokenizer_workdir(tmp_path_factory):
  data_dir = train_testing.prepare_digits(str(tmp_path_factory.mktemp("tfds")))
  config = train_testing.tiny_config(data_dir, num_steps=1, log_every_steps=1,
                                     checkpoint_every_steps=1)
  config.model.name = "vqvae2"  # downsample factor 2: 8x8 digits -> 2x2 top, 4x4 bottom
  config.data.eval_split = "test[:100]"
  config.train.kmeans_init = False  # its compilation would take most of the test's time
  workdir = str(tmp_path_factory.mktemp("vqvae2"))
  tokenizer_task.train_tokenizer(config, workdir)
  return workdir


def _config(module, tokenizer_workdir, **train):
  config = module.get_config("tiny")
  config.tokenizer_workdir = tokenizer_workdir
  config.model.num_classes = 10
  config.data.update(train_split="train", eval_split="test[:100]")
  config.train.update(num_samples=4, log_every_steps=1, checkpoint_every_steps=1, **train)
  return config


@pytest.fixture(scope="module")
def top_prior_workdir(tokenizer_workdir, tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("top_prior"))
  prior_task.train_prior(_config(prior_vqvae2_top, tokenizer_workdir, num_steps=1), workdir)
  return workdir


def _finite_nll(workdir, step, codebook_size=32):
  metrics = json.loads(open(os.path.join(workdir, "metrics.json")).read())
  assert metrics["step"] == step and metrics["num_examples"] == 100
  assert math.isfinite(metrics["nll_nats_per_token"]) and math.isfinite(metrics["bits_per_dim"])
  # A prior trained a step is near uniform over the tokenizer's 32 codes.
  assert abs(metrics["nll_nats_per_token"] - math.log(codebook_size)) < 0.5
  return metrics


def test_top_prior_writes_metrics_but_no_samples(top_prior_workdir):
  metrics = _finite_nll(top_prior_workdir, step=1)
  # bits/dim: a 2x2 grid's NLL in bits over the 8x8x1 image.
  np.testing.assert_allclose(metrics["bits_per_dim"],
                             metrics["nll_nats_per_token"] * 4 / math.log(2) / 64, rtol=1e-5)
  assert not os.path.exists(os.path.join(top_prior_workdir, "samples.png"))
  run, state = prior_task.restore_prior_workdir(top_prior_workdir)
  assert (run.level, run.grid_shape, run.condition_shape) == ("top", (2, 2), None)
  with pytest.raises(ValueError, match="cannot be decoded alone.*--top_prior_workdir"):
    prior_task.sample_images(run, state, np.array([0, 1], np.uint32), num_samples=2)


def test_bottom_prior_trains_resumes_and_samples_over_the_top_prior(
    tokenizer_workdir, top_prior_workdir, tmp_path):
  workdir = str(tmp_path / "bottom")
  # Without a top prior, samples.png is decoded over the evaluation split's top grids.
  prior_task.train_prior(_config(prior_vqvae2_bottom, tokenizer_workdir, num_steps=1),
                         workdir)
  _finite_nll(workdir, step=1)
  assert os.path.getsize(os.path.join(workdir, "samples.png")) > 0
  os.remove(os.path.join(workdir, "samples.png"))

  config = _config(prior_vqvae2_bottom, tokenizer_workdir, num_steps=2)
  config.top_prior_workdir = top_prior_workdir
  config.train.allow_config_change = True  # more steps and a top prior: safe changes
  assert prior_task.train_prior(config, workdir)["step"] == 2  # resumed from step 1
  _finite_nll(workdir, step=2)
  assert os.path.getsize(os.path.join(workdir, "samples.png")) > 0

  run, state = prior_task.restore_prior_workdir(workdir)
  assert (run.level, run.grid_shape, run.condition_shape) == ("bottom", (4, 4), (2, 2))
  assert run.model.condition_codebook_size == 32
  samples = prior_task.sample_images(run, state, np.array([0, 1], np.uint32), num_samples=4,
                                     labels=np.full(4, 7))  # the top prior's, restored
  assert samples.shape == (4, 8, 8, 1) and np.all(np.isfinite(samples))


def test_level_mistakes_fail_before_compiling(tokenizer_workdir, top_prior_workdir):
  config = _config(prior_vqvae2_top, tokenizer_workdir)
  config.level = None
  with pytest.raises(ValueError, match="is a VQ-VAE-2.*--config.level=top"):
    prior_task.prepare_prior(config)
  config.level = "middle"
  with pytest.raises(ValueError, match="config.level is 'middle'"):
    prior_task.prepare_prior(config)
  config.level = "top"
  config.top_prior_workdir = top_prior_workdir
  with pytest.raises(ValueError, match="only a bottom prior.*unset it"):
    prior_task.prepare_prior(config)

  pixelcnn = _config(prior_mnist_pixelcnn, tokenizer_workdir)
  pixelcnn.level = "bottom"
  with pytest.raises(ValueError, match="'pixelcnn' prior takes no top-grid condition"):
    prior_task.prepare_prior(pixelcnn)

  bottom = _config(prior_vqvae2_bottom, tokenizer_workdir)
  bottom_run = prior_task.prepare_prior(bottom)
  with pytest.raises(ValueError, match="not 'top'; pass the workdir of a prior trained"):
    prior_task.check_top_prior_workdir(bottom_run, tokenizer_workdir)  # a tokenizer's config
  top_run, _ = prior_task.restore_prior_workdir(top_prior_workdir)
  with pytest.raises(ValueError, match="config.level='bottom', not 'top'"):
    prior_sampling.check_top_prior(bottom_run, bottom_run)
  prior_sampling.check_top_prior(bottom_run, top_run)  # fits
