"""Adversarial experiments: every VQGAN config's one step on (mocked) data, the whole
loop on the built-in digits with LPIPS in training and evaluation, a restart across
discriminator_start, a VQ-VAE trained with the adversarial sections, and the config
checks."""
import importlib
import pathlib

import chex
import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

import train_testing
from experiments.configs import vqgan_digits
from vqjax.train import gan_state
from vqjax.runner import experiment, gan_experiment, loop, token_cache, tokenizer_task


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return train_testing.prepare_digits(str(tmp_path_factory.mktemp("tfds")))


def _mock_metadata(data_dir: str, name: str, splits, examples: int) -> None:
  """Mocked examples are random, but splits come from metadata in data_dir: write it."""
  builder = tfds.builder(name, data_dir=data_dir)
  builder.info.set_splits(tfds.core.SplitDict([
      tfds.core.SplitInfo(name=split, shard_lengths=[examples], num_bytes=0)
      for split in splits]))
  pathlib.Path(builder.data_dir).mkdir(parents=True)
  builder.info.write_to_directory(builder.data_dir)


@pytest.mark.parametrize("name,dataset,splits", [
    ("vqgan_mnist", "mnist", ("train", "test")),
    ("vqgan_imagenet256_f16", "imagenet2012", ("train", "validation")),
    ("vqgan_imagenet256_f8", "imagenet2012", ("train", "validation")),
])
def test_one_gan_step_of_each_config_on_mocked_data(tmp_path, name, dataset, splits):
  data_dir = str(tmp_path / "tfds")
  _mock_metadata(data_dir, dataset, splits, examples=8)
  config = importlib.import_module(f"experiments.configs.{name}").get_config("tiny")
  config.data.update(data_dir=data_dir, batch_size=8, eval_batch_size=8, variance_examples=8,
                     train_split="train", shuffle_buffer_size=None)
  config.gan.discriminator_start = 0
  with tfds.testing.mock_data(num_examples=8, data_dir=data_dir):
    run = experiment.prepare(config)
    batch = next(experiment.train_batches(run, start_step=0))
  state = run.init()
  assert isinstance(state, gan_state.GANTrainState)
  step = gan_experiment.train_step(run.model, run.optimizer, run.gan)
  state, metrics = step(state, batch)
  assert int(jax.device_get(state.step)) == 1
  for key in ("loss", "reconstruction_loss", "perceptual_loss", "generator_gan_loss",
              "adaptive_weight", "discriminator_loss", "logits_real", "logits_fake",
              "codebook_loss", "commitment_loss", "perplexity"):
    assert np.isfinite(float(metrics[key])), key
  assert float(metrics["perceptual_loss"]) > 0 and float(metrics["discriminator_loss"]) > 0


def test_vqgan_digits_trains_evaluates_with_lpips_and_feeds_token_grids(data_dir, tmp_path):
  config = vqgan_digits.get_config("tiny")
  config.data.update(data_dir=data_dir, eval_split="test[:64]")
  config.train.update(num_steps=4, checkpoint_every_steps=2, log_every_steps=2,
                      kmeans_init=False)  # k-means compiles slowly; tested with the VQ-VAE
  # LPIPS in the step: test_gan_steps.py and the configs' steps above; here in evaluation.
  config.gan.update(discriminator_start=2, generator_ema_decay=0.9, perceptual_weight=0.0)
  workdir = str(tmp_path / "vqgan")
  metrics = tokenizer_task.train_tokenizer(config, workdir)
  assert metrics["step"] == 4 and 0 < metrics["lpips"] < 1.5
  assert np.isfinite(metrics["normalized_mse"]) and 0 < metrics["codes_used_fraction"] <= 1
  run, state = tokenizer_task.restore_workdir(workdir)
  assert isinstance(state, gan_state.GANTrainState) and int(state.step) == 4
  assert run.gan.perceptual.resize_to == 28 and state.ema_params
  grids = token_cache.restore_with_grids(workdir, ["test[:16]"]).grids["test[:16]"]
  assert grids.grids["tokens"].shape == (16, 4, 4)


def test_a_restart_before_discriminator_start_ends_like_an_uninterrupted_run(data_dir,
                                                                            tmp_path):
  """The host switches programs at discriminator_start from the restored step."""
  config = vqgan_digits.get_config("tiny")
  config.data.data_dir = data_dir
  config.optimizer.schedule = "constant"  # the schedule must not depend on num_steps
  config.train.update(kmeans_init=False, checkpoint_every_steps=100)
  if "allow_config_change" in config.train:  # where restarts check config.json (issue 16)
    config.train.allow_config_change = True  # the rerun asks for more steps
  config.gan.update(discriminator_start=3, perceptual_weight=0.0)  # LPIPS: test_gan_steps.py

  def train(workdir, num_steps):
    config.train.num_steps = num_steps
    task = tokenizer_task.tokenizer_task(experiment.prepare(config))
    loop.train_and_evaluate(task._replace(make_evaluators=lambda: []), workdir)
    return jax.device_get(tokenizer_task.restore_workdir(workdir)[1])

  uninterrupted = train(str(tmp_path / "uninterrupted"), 5)
  stopped = train(str(tmp_path / "restarted"), 2)  # before the start
  restarted = train(str(tmp_path / "restarted"), 5)
  assert int(stopped.step) == 2 and int(restarted.step) == 5
  chex.assert_trees_all_equal(restarted, uninterrupted)
  assert not np.allclose(restarted.disc_params["conv0"]["kernel"],
                         stopped.disc_params["conv0"]["kernel"])  # the GAN did switch on


def test_a_vqvae_with_the_adversarial_sections_trains_adversarially(data_dir, tmp_path):
  config = train_testing.tiny_config(data_dir, num_steps=2, log_every_steps=1,
                                     checkpoint_every_steps=2)
  gan_config = vqgan_digits.get_config("tiny")
  for section in gan_experiment.SECTIONS:
    config[section] = gan_config[section]
  config.gan.update(discriminator_start=0, perceptual_weight=0.0)
  config.data.update(eval_split="test[:32]", value_range=(-1.0, 1.0))
  run = experiment.prepare(config)
  assert run.config.model.name == "vqvae" and run.gan is not None
  state = run.init()
  assert isinstance(state, gan_state.GANTrainState)
  step = tokenizer_task.tokenizer_task(run).make_train_step()
  state, metrics = step(state, next(experiment.train_batches(run, start_step=0)))
  assert float(metrics["discriminator_loss"]) > 0 and float(metrics["adaptive_weight"]) > 0
  metrics = tokenizer_task.train_tokenizer(config, str(tmp_path / "vqvae_gan"))
  assert metrics["step"] == 2 and 0 < metrics["lpips"] < 1.5  # adversarial runs add LPIPS


def test_lpips_for_a_vqvae_run_on_request(data_dir, tmp_path):
  config = train_testing.tiny_config(data_dir, num_steps=1, log_every_steps=1,
                                     checkpoint_every_steps=1)
  config.data.eval_split = "test[:64]"
  workdir = str(tmp_path / "vqvae")
  assert "lpips" not in tokenizer_task.train_tokenizer(config, workdir)
  assert tokenizer_task.evaluate_workdir(workdir, lpips=True)["lpips"] > 0


def test_missing_and_unknown_gan_fields_are_named(data_dir):
  config = vqgan_digits.get_config("tiny")
  config.data.data_dir = data_dir
  del config.discriminator
  with pytest.raises(ValueError, match="has a 'gan' section but no discriminator section"):
    experiment.prepare(config)
  config = vqgan_digits.get_config("tiny")
  config.data.data_dir = data_dir
  for section in gan_experiment.SECTIONS:  # no adversarial sections: a plain VQGAN step
    del config[section]
  assert experiment.prepare(config).gan is None
  config = vqgan_digits.get_config("tiny")
  config.data.data_dir = data_dir
  config.gan.disc_factor = 1.0
  with pytest.raises(ValueError,
                     match=r"config.gan has unknown field\(s\) 'disc_factor'; its fields"):
    experiment.prepare(config)
  config = vqgan_digits.get_config("tiny")
  config.data.data_dir = data_dir
  config.lpips.net = "alex"
  with pytest.raises(ValueError, match=r"config.lpips has unknown field\(s\) 'net'; its fields"):
    experiment.prepare(config)
  config = vqgan_digits.get_config("tiny")
  config.data.data_dir = data_dir
  config.data.value_range = (0.0, 1.0)
  with pytest.raises(ValueError, match="LPIPS loss reads images in"):
    experiment.prepare(config)
  config = vqgan_digits.get_config("tiny")
  config.data.data_dir = data_dir
  config.lpips.resize_to = None  # the digits are 8x8
  with pytest.raises(ValueError, match="LPIPS cannot read.*config.lpips.resize_to=32"):
    experiment.prepare(config)
  config = vqgan_digits.get_config("tiny")
  config.data.data_dir = data_dir
  config.discriminator.norm = "batch"
  config.gan.r1_gamma = 1.0
  with pytest.raises(ValueError, match="'group' or 'none'"):
    experiment.prepare(config)
