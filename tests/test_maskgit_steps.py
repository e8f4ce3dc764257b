"""vqjax/train/maskgit_steps.py and vqjax/runner/masked_nll.py: the train step's loss is
the cross-entropy of the masked tokens only, under the step's own masks; the pmapped step
runs on 4 devices; the eval step masks exactly ceil(r * N) tokens of the valid grids; the
MaskedNLLEvaluator reports log K and the argmax's accuracy for a model of constant logits;
a config saved before these fields existed resumes under the new defaults."""
import math
import types

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from vqjax import maskgit
from vqjax.models import TinyMaskGITPrior
from vqjax.runner import config_drift, masked_nll
from vqjax.tokens import TokenGrids
from vqjax.train import maskgit_steps, parallel
from vqjax.train.state import create_train_state, step_key

MODEL = TinyMaskGITPrior(num_classes=10, num_layers=1)


def _batch(seed=0, devices=4, per_device=2):
  rng = np.random.default_rng(seed)
  return {"tokens": rng.integers(0, 16, (devices, per_device, 4, 4)).astype(np.int32),
          "label": rng.integers(0, 10, (devices, per_device)).astype(np.int32)}


def _state(optimizer=optax.sgd(0.0)):
  return create_train_state(MODEL, optimizer, jnp.zeros((1, 4, 4), jnp.int32), seed=0,
                            labels=jnp.zeros((1,), jnp.int32))


def test_loss_is_the_masked_tokens_cross_entropy_under_the_steps_masks():
  state = _state()
  batch = {key: value[0] for key, value in _batch().items()}
  _, metrics = maskgit_steps.masked_train_step(state, batch, model=MODEL,
                                               optimizer=optax.sgd(0.0), axis_name=None)
  mask_key, _ = jax.random.split(step_key(state))
  tokens = batch["tokens"].reshape(2, 16)
  masked, mask = maskgit.mask_tokens(mask_key, tokens, mask_token_id=16)
  logits = MODEL.apply({"params": state.params}, masked.reshape(2, 4, 4),
                       labels=batch["label"], train=False)
  nll = optax.softmax_cross_entropy_with_integer_labels(logits, tokens)
  np.testing.assert_allclose(metrics["loss"], nll[mask].mean(), rtol=1e-5)
  np.testing.assert_allclose(metrics["mask_fraction"], mask.mean(), rtol=1e-6)


def test_pmapped_train_step_runs_on_every_device_and_learns():
  optimizer = optax.adam(1e-2)
  step = parallel.prior_train_step(MODEL, optimizer, label_smoothing=0.1)
  state = _state(optimizer)
  batch = _batch()
  state, first = step(state, batch)
  for _ in range(5):
    state, metrics = step(state, batch)
  assert int(state.step) == 6 and np.isfinite(float(metrics["grad_norm"]))
  assert float(metrics["loss"]) < float(first["loss"])


def test_eval_step_masks_exactly_ceil_r_n_tokens_of_the_valid_grids():
  batch = {**_batch(1), "mask": (np.arange(8) < 5).reshape(4, 2)}
  sums = parallel.masked_eval_step(MODEL, mask_ratios=(0.5, 0.9))(
      _state(), batch, jax.random.PRNGKey(0))
  assert float(sums["count"]) == 5
  assert float(sums["masked_0.5"]) == 5 * 8 and float(sums["masked_0.9"]) == 5 * 15
  assert 0 < float(sums["correct_0.9"]) <= 75 and float(sums["nll_0.9"]) > 0


def test_evaluator_on_a_model_of_constant_logits():
  """All-zero parameters give zero logits: NLL log K, the argmax (token 0) right exactly
  where the token is 0."""
  state = _state()
  state = state.replace(params=jax.tree.map(jnp.zeros_like, state.params))
  grids = np.zeros((10, 4, 4), np.int32)
  grids[5:] = 3  # half the grids are all 0 (accuracy 1), half all 3 (accuracy 0)
  run = types.SimpleNamespace(
      model=MODEL,
      config=ml_collections.ConfigDict(dict(data=dict(eval_batch_size=8),
                                            train=dict(eval_mask_ratios=(0.5, 0.9)))),
      eval_grids=TokenGrids({"tokens": grids}, np.arange(10, dtype=np.int32) % 10, 0, "test"))
  metrics = dict(masked_nll.MaskedNLLEvaluator(run).run(state))
  assert metrics["num_examples"] == 10
  for ratio in ("0.5", "0.9"):
    np.testing.assert_allclose(metrics[f"masked_nll_{ratio}"], math.log(16), rtol=1e-5)
    np.testing.assert_allclose(metrics[f"masked_accuracy_{ratio}"], 0.5, rtol=1e-6)


def test_an_old_config_without_the_new_fields_resumes_under_their_defaults():
  old = {"model": {"name": "transformer", "num_classes": 10}, "train": {"num_steps": 5}}
  same = {"model": {"name": "transformer", "num_classes": 10, "label_dropout_rate": 0.0},
          "train": {"num_steps": 5, "label_smoothing": 0.0, "guidance_ramp": False}}
  assert config_drift.differences(old, same) == []
  guided = {**same, "model": {**same["model"], "label_dropout_rate": 0.1}}
  assert config_drift.differences(old, guided) == [("model.label_dropout_rate", 0.0, 0.1)]
  assert not config_drift.is_safe("model.label_dropout_rate")
  assert config_drift.is_safe("train.guidance_scale") and config_drift.is_safe(
      "train.maskgit_steps")
