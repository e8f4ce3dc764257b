"""Tests for vqjax.models.vqvae2."""
import functools
import re

import chex
import jax
import jax.numpy as jnp
import pytest

from vqjax import nn as vqnn
from vqjax.models.vqvae2 import TinyVQVAE2, VQVAE2Output

STATE = "quantizer_state"


def _key(seed):
  # rbg keys (XLA's RngBitGenerator) compile in a fraction of the time of threefry keys.
  return jax.random.key(seed, impl="rbg")


# Tiny models run in milliseconds; the unoptimized CPU backend halves their compile time.
_jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})


def _abstract(model, shape, **kwargs):
  """(variables, output) as shapes and dtypes: traced, never compiled."""
  images = jax.ShapeDtypeStruct(shape, jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), images)
  out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False, **kwargs), variables, images)
  return variables, out


class ShapeTest(chex.TestCase):

  def test_top_grid_is_an_eighth_and_bottom_grid_a_quarter(self):
    for (height, width, channels), factor, top, bottom in [
        ((32, 32, 3), 4, (4, 4), (8, 8)), ((64, 32, 1), 4, (8, 4), (16, 8)),
        ((16, 16, 3), 2, (4, 4), (8, 8))]:
      model = TinyVQVAE2(image_channels=channels, downsample_factor=factor)
      variables, out = _abstract(model, (2, height, width, channels))
      assert isinstance(out, VQVAE2Output)
      chex.assert_shape(out.reconstruction, (2, height, width, channels))
      chex.assert_shape(out.top_indices, (2, *top))
      chex.assert_shape(out.bottom_indices, (2, *bottom))
      decoded = jax.eval_shape(
          lambda v, t, b: model.apply(v, t, b, method="decode_indices"), variables,
          out.top_indices, out.bottom_indices)
      chex.assert_shape(decoded, (2, height, width, channels))

  def test_bfloat16_compute_keeps_float32_params_and_reconstruction(self):
    model = TinyVQVAE2(dtype=jnp.bfloat16)
    variables, (out, state) = _abstract(model, (2, 32, 32, 3), capture_intermediates=True)
    for leaf in jax.tree.leaves(variables):
      assert leaf.dtype == jnp.float32
    assert out.reconstruction.dtype == jnp.float32
    intermediates = state["intermediates"]
    assert intermediates["decoder"]["__call__"][0].dtype == jnp.bfloat16
    for name in ("top_quantizer", "bottom_quantizer"):
      assert intermediates[name]["__call__"][0].quantized.dtype == jnp.float32


def test_trains_and_round_trips():
  # An EMA top codebook and a gradient bottom codebook: both kinds of state in one model.
  model = TinyVQVAE2(top_quantizer=vqnn.VectorQuantizer(32, 8, ema_decay=0.9),
                     bottom_quantizer=vqnn.VectorQuantizer(32, 8, codebook_init_scale=1.0))
  images = jax.random.uniform(jax.random.key(0), (2, 32, 32, 3), minval=-1.0, maxval=1.0)

  @_jit
  def run(images):
    variables = model.init(_key(0), images, train=False)
    params, state = variables["params"], {STATE: variables[STATE]}

    def loss_fn(params):
      out, updated = model.apply({"params": params, **state}, images, train=True,
                                 mutable=[STATE])
      return jnp.mean((out.reconstruction - images) ** 2) + out.quantizer_loss, (out, updated)

    grads, (train_out, updated) = jax.grad(loss_fn, has_aux=True)(params)
    indices = model.apply(variables, images, method="encode")
    decoded = model.apply(variables, *indices, method="decode_indices")
    eval_out = model.apply(variables, images, train=False)
    return variables, grads, train_out, updated, eval_out, indices, decoded

  variables, grads, train_out, updated, out, (top, bottom), decoded = run(images)

  assert set(train_out.quantizer_losses) == {
      "top/codebook_loss", "top/commitment_loss", "bottom/codebook_loss",
      "bottom/commitment_loss"}
  assert {"top/perplexity", "bottom/perplexity"} <= set(train_out.metrics)
  chex.assert_tree_all_finite((train_out.quantizer_loss, train_out.reconstruction))
  chex.assert_trees_all_close(train_out.quantizer_loss,
                              sum(train_out.quantizer_losses.values(), jnp.float32(0)),
                              rtol=1e-6)
  for path, grad in jax.tree_util.tree_leaves_with_path(grads):
    if path[-1].key in ("kernel", "codebook"):
      assert float(jnp.abs(grad).max()) > 0, path
  assert "top_quantizer" not in grads  # EMA: the codebook is state
  assert float(jnp.abs(updated[STATE]["top_quantizer"]["codebook"]
                       - variables[STATE]["top_quantizer"]["codebook"]).max()) > 0

  chex.assert_trees_all_equal((top, bottom), (out.top_indices, out.bottom_indices))
  chex.assert_shape((top, bottom), [(2, 4, 4), (2, 8, 8)])
  chex.assert_trees_all_close(decoded, out.reconstruction, atol=1e-5)


class ErrorTest(chex.TestCase):

  def _raises(self, message, model, shape):
    with pytest.raises(ValueError, match=re.escape(message)):
      _abstract(model, shape)

  def test_image_size_must_be_divisible_by_the_top_factor(self):
    self._raises("image size 36 is not divisible by the encoder's downsampling factor 8; "
                 "use 32 or 40", TinyVQVAE2(), (1, 36, 32, 3))

  def test_downsample_factor_and_channels(self):
    self._raises("downsample_factor is 3; it must be a power of 2 >= 2",
                 TinyVQVAE2(downsample_factor=3), (1, 32, 32, 3))
    self._raises("images have 3 channels but the model has image_channels=1",
                 TinyVQVAE2(image_channels=1), (1, 32, 32, 3))

  def test_each_quantizer_dim_must_match_embedding_dim(self):
    self._raises("embedding_dim is 8 but the top_quantizer (VectorQuantizer) takes 4 channels",
                 TinyVQVAE2(top_quantizer=vqnn.VectorQuantizer(32, 4)), (1, 32, 32, 3))
    self._raises("embedding_dim is 8 but the bottom_quantizer (FSQ) takes 3 channels",
                 TinyVQVAE2(bottom_quantizer=vqnn.FSQ((5, 5, 5))), (1, 32, 32, 3))

  def test_decode_indices_needs_a_top_grid_half_the_bottom_grid(self):
    model = TinyVQVAE2()
    variables, _ = _abstract(model, (1, 32, 32, 3))
    grid = lambda *shape: jax.ShapeDtypeStruct(shape, jnp.int32)
    with pytest.raises(ValueError, match=re.escape(
        "the top token grid is (4, 4) and the bottom grid (4, 4)")):
      jax.eval_shape(lambda v, t, b: model.apply(v, t, b, method="decode_indices"),
                     variables, grid(1, 4, 4), grid(1, 4, 4))
