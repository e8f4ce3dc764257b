"""The whole loop on tiny models: train, checkpoint, evaluate, report; resume; NaN stop."""
import glob
import json
import logging
import os

import jax
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import train_testing
from vqjax.runner import (experiment, host_allocator, summaries, tokenizer_task,
                          workdir as workdir_lib)
from vqjax.train.checkpoints import Checkpoints


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return train_testing.prepare_digits(str(tmp_path_factory.mktemp("tfds")))


def _event_tags(logdir):
  tags = {}
  for path in glob.glob(os.path.join(logdir, "events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        tags.setdefault(value.tag, value.metadata.plugin_data.plugin_name)
  return tags


def _restore(workdir, config):
  run = experiment.prepare(config)
  checkpoints = Checkpoints(os.path.join(workdir, "checkpoints"), save_every_steps=1,
                            max_to_keep=None)
  try:
    return checkpoints.all_steps(), checkpoints.restore_latest(run.abstract_state)
  finally:
    checkpoints.close()


@pytest.mark.parametrize("model", ["vqvae", "vqvae2"])
def test_two_steps_train_checkpoint_and_report(data_dir, tmp_path, model, monkeypatch, caplog):
  for name in host_allocator.RETAINED_MALLOC:
    monkeypatch.delenv(name, raising=False)
  caplog.set_level(logging.INFO, logger="absl")
  config = train_testing.tiny_config(data_dir, num_steps=2, log_every_steps=1,
                                     checkpoint_every_steps=1, keep_checkpoints=1)
  config.model.name = model
  if model == "vqvae2":
    config.train.quantizer_loss_weights = {"top/commitment_loss": 0.5}
  workdir = str(tmp_path)
  metrics = tokenizer_task.train_tokenizer(config, workdir)

  # On the CPU, without glibc's settings, the run says how to keep XLA's buffers mapped.
  assert any(host_allocator.command_prefix() in record.getMessage()
             for record in caplog.records)
  assert metrics["step"] == 2 and metrics["examples"] == 297
  prefixes = [""] if model == "vqvae" else ["top/", "bottom/"]
  for prefix in prefixes:
    assert 1 <= metrics[prefix + "perplexity"] <= 32
    assert 0 < metrics[prefix + "codes_used_fraction"] <= 1
  assert np.isclose(metrics["normalized_mse"], metrics["mse"] / metrics["data_variance"])
  assert np.isclose(metrics["psnr"], 10 * np.log10(4 / metrics["mse"]), rtol=0.3)
  assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
  assert workdir_lib.load_config(workdir).model.name == model
  for name in ("reconstructions.png", "codebook_usage.png"):
    with Image.open(tmp_path / name) as image:
      assert image.size[0] > 0 and image.size[1] > 0
  tags = _event_tags(str(tmp_path / "tensorboard"))
  for name in ("loss", "reconstruction_loss", "quantizer_loss", "commitment_loss",
               "codebook_loss", "perplexity", "codes_used_fraction", "dead_codes",
               "learning_rate", "steps_per_second", "images_per_second"):
    prefixed = [f"train/{p}{name}" for p in prefixes] + [f"train/{name}"]
    assert any(tag in tags for tag in prefixed), name
  assert tags["eval/reconstructions"] == "images" and tags["eval/mse"] == "scalars"
  assert tags["eval/codebook_usage"] == "images"

  steps, state = _restore(workdir, config)
  assert steps == [2] and int(state.step) == 2  # keep_checkpoints=1
  # A second call finds the run finished: no training, the same evaluation.
  assert tokenizer_task.train_tokenizer(config, workdir) == metrics


def test_nan_stops_sets_the_diverged_state_aside_and_a_sane_restart_trains_on(data_dir,
                                                                               tmp_path):
  # Adam moves every weight by about the learning rate on the first step: 1e30 overflows,
  # so step 2's loss, computed from the state of step 1, is not finite: state 1 diverged.
  config = train_testing.tiny_config(data_dir, num_steps=3, checkpoint_every_steps=1,
                                     kmeans_init=False)
  config.data.eval_split = "test[:32]"
  config.optimizer.learning_rate = 1e30
  with pytest.raises(summaries.NonFiniteLossError,
                     match=r"non-finite loss at step 2 .*a restart begins at step 0"):
    tokenizer_task.train_tokenizer(config, str(tmp_path))
  assert workdir_lib.checkpoints_of(str(tmp_path), config).all_steps() == []
  assert [p.name[:2] for p in (tmp_path / "checkpoints.diverged").iterdir()] == ["1-"]
  assert not (tmp_path / "metrics.json").exists()
  # The restart the error advises: a sane learning rate (a safe change, allowed).
  config.optimizer.learning_rate = 1e-3
  config.train.allow_config_change = True
  metrics = tokenizer_task.train_tokenizer(config, str(tmp_path))
  assert metrics["step"] == 3 and np.isfinite(metrics["mse"])
  steps, state = _restore(str(tmp_path), config)
  assert steps[-1] == 3
  assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(jax.device_get(state)))
