"""Tests for vqjax.models.vqvae (and the layers of vqjax.models.layers it builds on)."""
import functools
import re

import chex
import jax
import jax.numpy as jnp
import pytest

from vqjax import nn as vqnn
from vqjax.models.layers import Encoder
from vqjax.models.vqvae import TinyVQVAE, VQVAEOutput

STATE = "quantizer_state"


def _key(seed):
  # rbg keys (XLA's RngBitGenerator) compile in a fraction of the time of threefry keys.
  return jax.random.key(seed, impl="rbg")


# Tiny models run in milliseconds; the unoptimized CPU backend halves their compile time.
_jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})


def _images(shape, seed=0):
  return jax.random.uniform(jax.random.key(seed), shape, minval=-1.0, maxval=1.0)


def _abstract(model, shape, dtype=jnp.float32, **kwargs):
  """(variables, output) as shapes and dtypes: traced, never compiled."""
  images = jax.ShapeDtypeStruct(shape, dtype)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), images)
  out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False, **kwargs), variables, images)
  return variables, out


# One compilation per test: init and a train-mode gradient, or init and the round trip.
def _train(model, images):
  @_jit
  def train(images):
    variables = model.init(_key(0), images, train=False)
    params = variables["params"]
    state = {k: v for k, v in variables.items() if k != "params"}

    def loss_fn(params):
      out, updated = model.apply({"params": params, **state}, images, train=True,
                                 mutable=[STATE], rngs={"quantizer": _key(1)})
      return jnp.mean((out.reconstruction - images) ** 2) + out.quantizer_loss, (out, updated)

    grads, (out, updated) = jax.grad(loss_fn, has_aux=True)(params)
    return variables, grads, out, updated
  return train(images)


def _round_trip(model, images):
  @_jit
  def round_trip(images):
    variables = model.init(_key(0), images, train=False)
    indices = model.apply(variables, images, method="encode")
    decoded = model.apply(variables, indices, method="decode_indices")
    return model.apply(variables, images, train=False), indices, decoded
  return round_trip(images)


QUANTIZERS = {
    "vq_gradient": (vqnn.VectorQuantizer(32, 8, codebook_init_scale=1.0), 8,
                    {"codebook_loss", "commitment_loss"}),
    "vq_ema": (vqnn.VectorQuantizer(32, 8, ema_decay=0.9), 8,
               {"codebook_loss", "commitment_loss"}),
    "fsq": (vqnn.FSQ((5, 5, 4)), 3, set()),
    "lfq": (vqnn.LFQ(6), 6, {"entropy_loss", "commitment_loss"}),
    "residual": (vqnn.ResidualVectorQuantizer(2, 16, 8, codebook_init_scale=1.0), 8,
                 {"codebook_loss", "commitment_loss"}),
    "gumbel": (vqnn.GumbelQuantizer(16, 8), 16, {"kl_loss"}),
}


class ShapeTest(chex.TestCase):

  def test_token_grid_and_reconstruction_shapes(self):
    for (height, width, channels), factor, grid in [
        ((28, 28, 1), 4, (7, 7)), ((32, 32, 3), 4, (8, 8)), ((32, 16, 3), 8, (4, 2)),
        ((28, 28, 1), 2, (14, 14))]:
      model = TinyVQVAE(image_channels=channels, downsample_factor=factor)
      variables, out = _abstract(model, (2, height, width, channels))
      assert isinstance(out, VQVAEOutput)
      chex.assert_shape(out.reconstruction, (2, height, width, channels))
      chex.assert_shape(out.indices, (2, *grid))
      assert out.indices.dtype == jnp.int32
      chex.assert_shape(out.quantizer_loss, ())
      assert set(out.quantizer_losses) == {"codebook_loss", "commitment_loss"}
      indices = jax.eval_shape(
          lambda v, x: model.apply(v, x, method="encode"), variables,
          jax.ShapeDtypeStruct((2, height, width, channels), jnp.float32))
      chex.assert_shape(indices, (2, *grid))
      images = jax.eval_shape(lambda v, i: model.apply(v, i, method="decode_indices"),
                              variables, indices)
      chex.assert_shape(images, (2, height, width, channels))
      assert images.dtype == jnp.float32

  def test_bfloat16_compute_keeps_float32_params_search_and_reconstruction(self):
    model = TinyVQVAE(dtype=jnp.bfloat16)
    variables, (out, state) = _abstract(model, (2, 16, 16, 3), capture_intermediates=True)
    for leaf in jax.tree.leaves(variables):
      assert leaf.dtype == jnp.float32
    assert out.reconstruction.dtype == jnp.float32
    intermediates = state["intermediates"]
    assert intermediates["encoder"]["__call__"][0].dtype == jnp.bfloat16
    assert intermediates["decoder"]["__call__"][0].dtype == jnp.bfloat16
    # The VQ layer returns z's dtype: float32 means it searched on a float32 z_e.
    assert intermediates["quantizer"]["__call__"][0].quantized.dtype == jnp.float32


@pytest.mark.parametrize("kind", sorted(QUANTIZERS))
def test_every_quantizer_plugs_in_and_trains(kind):
  quantizer, embedding_dim, loss_names = QUANTIZERS[kind]
  model = TinyVQVAE(quantizer=quantizer, embedding_dim=embedding_dim)
  images = _images((2, 16, 16, 3))
  variables, grads, out, updated = _train(model, images)

  assert set(out.quantizer_losses) == loss_names
  assert bool(jnp.isfinite(out.quantizer_loss))
  chex.assert_trees_all_close(out.quantizer_loss,
                              sum(out.quantizer_losses.values(), jnp.float32(0)), rtol=1e-6)
  levels = (2,) if kind == "residual" else ()
  chex.assert_shape(out.indices, (2, 4, 4, *levels))
  chex.assert_tree_all_finite((out.reconstruction, out.metrics))
  for name in ("encoder", "pre_quantization", "decoder"):
    for path, grad in jax.tree_util.tree_leaves_with_path(grads[name]):
      if path[-1].key == "kernel":
        assert float(jnp.abs(grad).max()) > 0, (name, path)
  if kind in ("vq_gradient", "residual", "gumbel"):
    assert float(jnp.abs(grads["quantizer"]["codebook"]).max()) > 0
  if kind == "vq_ema":
    assert "quantizer" not in grads
    assert float(jnp.abs(updated[STATE]["quantizer"]["codebook"]
                         - variables[STATE]["quantizer"]["codebook"]).max()) > 0
    assert float(jnp.abs(updated[STATE]["quantizer"]["cluster_size"]
                         - variables[STATE]["quantizer"]["cluster_size"]).max()) > 0


@pytest.mark.parametrize("kind,dtype", [("vq_ema", jnp.float32), ("residual", jnp.bfloat16)])
def test_encode_then_decode_indices_equals_the_eval_reconstruction(kind, dtype):
  quantizer, embedding_dim, _ = QUANTIZERS[kind]
  model = TinyVQVAE(quantizer=quantizer, embedding_dim=embedding_dim, image_channels=1,
                    dtype=dtype)
  out, indices, decoded = _round_trip(model, _images((2, 28, 28, 1)))
  chex.assert_trees_all_equal(indices, out.indices)
  assert decoded.dtype == jnp.float32
  tolerance = 1e-5 if dtype == jnp.float32 else 2e-2  # straight-through adds z - z in float32
  chex.assert_trees_all_close(decoded, out.reconstruction, atol=tolerance)


class ErrorTest(chex.TestCase):

  def _raises(self, message, model, shape):
    with pytest.raises(ValueError, match=re.escape(message)):
      _abstract(model, shape)

  def test_image_size_not_divisible_names_the_nearest_sizes(self):
    self._raises("image size 30 is not divisible by the encoder's downsampling factor 4; "
                 "use 28 or 32", TinyVQVAE(), (1, 32, 30, 3))
    self._raises("image size 6 is not divisible by the encoder's downsampling factor 8; "
                 "use 8", TinyVQVAE(downsample_factor=8), (1, 6, 8, 3))

  def test_downsample_factor_must_be_a_power_of_two(self):
    for factor in (1, 6):
      self._raises(f"downsample_factor is {factor}; it must be a power of 2 >= 2",
                   TinyVQVAE(downsample_factor=factor), (1, 24, 24, 3))

  def test_image_channels_and_rank(self):
    self._raises("images have 1 channels but the model has image_channels=3; build the "
                 "model with image_channels=1", TinyVQVAE(), (1, 16, 16, 1))
    self._raises("images must have shape [batch, height, width, channels]", TinyVQVAE(),
                 (16, 16, 3))
    with pytest.raises(ValueError, match="images have dtype uint8"):
      _abstract(TinyVQVAE(), (1, 16, 16, 3), jnp.uint8)

  def test_quantizer_dim_must_match_embedding_dim(self):
    self._raises("embedding_dim is 16 but the quantizer (VectorQuantizer) takes 8 channels "
                 "(its dim); set embedding_dim=8", TinyVQVAE(embedding_dim=16), (1, 16, 16, 3))
    self._raises("takes 3 channels (its len(levels)); set embedding_dim=3",
                 TinyVQVAE(quantizer=vqnn.FSQ((5, 5, 4))), (1, 16, 16, 3))
    self._raises("takes 16 channels (its codebook_size); set embedding_dim=16",
                 TinyVQVAE(quantizer=vqnn.GumbelQuantizer(16, 8)), (1, 16, 16, 3))

  def test_architecture_sizes(self):
    self._raises("num_residual_layers is -1", TinyVQVAE(num_residual_layers=-1), (1, 16, 16, 3))
    self._raises("the encoder's downsample kernel is 1; it must be a whole number >= 2",
                 TinyVQVAE(encoder_downsample_kernel=1), (1, 16, 16, 3))
    self._raises("hidden_channels is 0", TinyVQVAE(hidden_channels=0), (1, 16, 16, 3))


def _window_gradient(local: bool, token=(1, 1), downsample_kernel=4):
  """|d features at token / d image| of an Encoder (factor 4) on a 28x28 image."""
  encoder = Encoder(hidden_channels=8, residual_channels=4, num_residual_layers=2,
                    downsample_factor=4, local=local, downsample_kernel=downsample_kernel)
  images = _images((1, 28, 28, 1))
  variables = encoder.init(_key(0), images)
  token_features = lambda x: encoder.apply(variables, x)[0, token[0], token[1]].sum()
  return jnp.abs(jax.grad(token_features)(images))[0, :, :, 0], variables


def test_local_encoder_features_see_only_their_strided_window():
  # Token (1, 1) of two stride-2 4x4 convolutions (padding 1) sees pixels 1..10.
  gradient, variables = _window_gradient(local=True)
  outside = gradient.at[1:11, 1:11].set(0.0)
  assert float(outside.max()) == 0.0
  assert float(gradient[1:11, 1:11].min()) > 0.0
  assert "conv1x1" in variables["params"] and "conv3x3" not in variables["params"]


def test_a_3x3_downsample_kernel_shrinks_the_local_window_to_7x7_pixels():
  # Two stride-2 3x3 convolutions (padding 1): token (1, 1) sees pixels 1..7.
  gradient, variables = _window_gradient(local=True, downsample_kernel=3)
  assert float(gradient.at[1:8, 1:8].set(0.0).max()) == 0.0
  assert float(gradient[1:8, 1:8].min()) > 0.0
  assert variables["params"]["down0"]["kernel"].shape == (3, 3, 1, 8)


@pytest.mark.parametrize("kernel", [2, 3, 5])
def test_every_downsample_kernel_halves_the_image_per_strided_convolution(kernel):
  _, out = _abstract(TinyVQVAE(encoder_downsample_kernel=kernel), (2, 16, 24, 3))
  assert out.indices.shape == (2, 4, 6)
  assert out.reconstruction.shape == (2, 16, 24, 3)


def test_default_encoder_sees_beyond_the_window_and_keeps_its_parameter_names():
  gradient, variables = _window_gradient(local=False)
  assert float(gradient.at[1:11, 1:11].set(0.0).max()) > 0.0
  assert set(variables["params"]["residual_stack"]) == {
      "block0_conv3x3", "block0_conv1x1", "block1_conv3x3", "block1_conv1x1"}
