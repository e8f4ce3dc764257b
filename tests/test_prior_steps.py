"""Prior steps: the pmapped step on 4 devices equals the one-device step on the whole
batch (a VQ-VAE-2 bottom prior's with its top-grid condition too); the loss is the
raster-order next-token cross-entropy; eval sums skip padding."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vqjax import models
from vqjax.train import parallel, prior_steps
from vqjax.train.state import create_train_state

DEVICES, PER_DEVICE = 4, 2


def _batch(seed=0):
  rng = np.random.default_rng(seed)
  return {"tokens": rng.integers(0, 16, (DEVICES, PER_DEVICE, 4, 4)).astype(np.int32),
          "label": rng.integers(0, 10, (DEVICES, PER_DEVICE)).astype(np.int32)}


def _flat(batch):
  return {key: value.reshape(-1, *value.shape[2:]) for key, value in batch.items()}


@pytest.mark.parametrize("model", [
    models.TinyTransformerPrior(num_classes=10),
    models.TinyTransformerPrior(num_classes=10, condition_codebook_size=5),
    models.TinyGatedPixelCNN(hidden_channels=8, num_layers=2, num_classes=10)],
    ids=["transformer", "bottom_transformer", "pixelcnn"])
def test_pmapped_train_step_equals_one_device_step(model):
  optimizer = optax.sgd(0.5)  # adam would amplify rounding in near-zero gradients
  batch = _batch()
  inputs = {"labels": _flat(batch)["label"][:1]}
  if getattr(model, "condition_codebook_size", 0):  # a VQ-VAE-2 bottom prior: the top grid
    batch["condition"] = np.random.default_rng(2).integers(
        0, 5, (DEVICES, PER_DEVICE, 2, 2)).astype(np.int32)
    inputs["condition"] = batch["condition"][0, :1]
  flat = _flat(batch)
  state = create_train_state(model, optimizer, flat["tokens"][:1], seed=0, **inputs)
  expected, expected_metrics = jax.jit(
      lambda s, b: prior_steps.prior_train_step(s, b, model=model, optimizer=optimizer,
                                                axis_name=None))(state, flat)
  step = parallel.prior_train_step(model, optimizer)
  actual, metrics = step(jax.tree.map(jnp.copy, state), batch)

  assert int(actual.step) == 1
  np.testing.assert_allclose(metrics["loss"], expected_metrics["loss"], rtol=1e-5)
  np.testing.assert_allclose(metrics["grad_norm"], expected_metrics["grad_norm"], rtol=1e-4)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
               actual.params, expected.params)
  if "condition" in batch:  # the condition reaches the loss, through its embedding
    assert np.abs(np.asarray(actual.params["condition_embed"]["embedding"])
                  - np.asarray(state.params["condition_embed"]["embedding"])).max() > 0


def test_loss_is_next_token_cross_entropy_and_eval_masks_padding():
  model = models.TinyTransformerPrior()
  flat = _flat(_batch(1))
  state = create_train_state(model, optax.sgd(0.0), flat["tokens"][:1], seed=0)
  logits = model.apply({"params": state.params}, flat["tokens"], train=False)
  log_probs = jax.nn.log_softmax(logits)
  targets = flat["tokens"].reshape(len(flat["tokens"]), -1)
  nll = -np.take_along_axis(np.asarray(log_probs), targets[..., None], -1)[..., 0]
  _, metrics = prior_steps.prior_train_step(state, flat, model=model, optimizer=optax.sgd(0.0),
                                            axis_name=None)
  np.testing.assert_allclose(metrics["loss"], nll.mean(), rtol=1e-5)

  mask = np.arange(DEVICES * PER_DEVICE) < 5
  batch = {**_batch(1), "mask": mask.reshape(DEVICES, PER_DEVICE)}
  sums = parallel.prior_eval_step(model)(state, batch)
  assert float(sums["count"]) == 5 and float(sums["tokens"]) == 5 * 16
  np.testing.assert_allclose(sums["nll"], nll[:5].sum(), rtol=1e-5)
