"""The train state: what a fresh state holds, the model's variables, and its keys."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vqjax import models
from vqjax import nn as vqnn
from vqjax.train import state as train_state

IMAGES = jax.ShapeDtypeStruct((1, 8, 8, 1), jnp.float32)


def _abstract(model):
  return jax.eval_shape(
      lambda x: train_state.create_train_state(model, optax.adam(1e-3), x, seed=0), IMAGES)


def test_a_fresh_state_holds_params_optimizer_and_quantizer_state():
  model = models.TinyVQVAE(quantizer=vqnn.VectorQuantizer(32, 8, ema_decay=0.9),
                           image_channels=1, downsample_factor=2)
  state = _abstract(model)
  assert state.step.shape == () and state.step.dtype == jnp.int32
  assert state.rng.shape == (2,) and state.rng.dtype == jnp.uint32
  assert set(state.quantizer_state["quantizer"]) == {"codebook", "cluster_size", "embed_sum"}
  assert "quantizer" not in state.params  # an EMA codebook is state, not a parameter
  assert jax.tree.structure(state.opt_state[0].mu) == jax.tree.structure(state.params)
  assert set(state.variables) == {"params", "quantizer_state"}


def test_a_gradient_codebook_leaves_no_quantizer_state():
  state = _abstract(models.TinyVQVAE(image_channels=1, downsample_factor=2))
  assert state.quantizer_state == {} and set(state.variables) == {"params"}
  assert state.params["quantizer"]["codebook"].shape == (32, 8)


def test_other_variable_collections_are_refused():
  class WithBatchNorm(nn.Module):
    @nn.compact
    def __call__(self, images, *, train):
      return nn.BatchNorm(use_running_average=not train)(images)

  with pytest.raises(ValueError, match=r"collections \['batch_stats'\] besides 'params'"):
    _abstract(WithBatchNorm())


def test_keys_differ_by_step_and_from_the_kmeans_key():
  state = train_state.TrainState(step=jnp.int32(0), params={}, opt_state=(), quantizer_state={},
                                 rng=jax.random.PRNGKey(0))
  keys = [train_state.step_key(state.replace(step=jnp.int32(step))) for step in range(3)]
  keys.append(train_state.kmeans_key(state))
  assert len({np.asarray(key).tobytes() for key in keys}) == 4
  np.testing.assert_array_equal(keys[1], train_state.step_key(state.replace(step=jnp.int32(1))))
