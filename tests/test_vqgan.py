"""Tests for vqjax.models.vqgan."""
import functools
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vqjax import nn as vqnn
from vqjax.models.vqgan import TinyVQGAN, VQGANFeatures
from vqjax.models.vqvae import VQVAEOutput

STATE = "quantizer_state"


def _key(seed):
  # rbg keys (XLA's RngBitGenerator) compile in a fraction of the time of threefry keys.
  return jax.random.key(seed, impl="rbg")


# Tiny models run in milliseconds; the unoptimized CPU backend halves their compile time.
_jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})


def _images(shape, seed=0):
  return jnp.asarray(np.random.default_rng(seed).uniform(-1.0, 1.0, shape), jnp.float32)


def _abstract(model, shape, dtype=jnp.float32, **kwargs):
  """(variables, output) as shapes and dtypes: traced, never compiled."""
  images = jax.ShapeDtypeStruct(shape, dtype)
  variables = jax.eval_shape(lambda x: model.init(_key(0), x, train=False), images)
  out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False, **kwargs), variables, images)
  return variables, out


class ShapeTest(chex.TestCase):

  def test_token_grid_and_reconstruction_shapes_for_factors_8_and_16(self):
    for multipliers, (height, width), grid in [((1, 1, 2, 2), (32, 16), (4, 2)),
                                               ((1, 1, 1, 1, 2), (32, 32), (2, 2))]:
      model = TinyVQGAN(channel_multipliers=multipliers)
      assert model.downsample_factor == 2 ** (len(multipliers) - 1)
      variables, out = _abstract(model, (2, height, width, 3))
      assert isinstance(out, VQVAEOutput)
      chex.assert_shape(out.reconstruction, (2, height, width, 3))
      chex.assert_shape(out.indices, (2, *grid))
      assert out.indices.dtype == jnp.int32
      assert set(out.quantizer_losses) == {"codebook_loss", "commitment_loss"}
      indices = jax.eval_shape(lambda v, x: model.apply(v, x, method="encode"), variables,
                               jax.ShapeDtypeStruct((2, height, width, 3), jnp.float32))
      chex.assert_shape(indices, (2, *grid))
      images = jax.eval_shape(lambda v, i: model.apply(v, i, method="decode_indices"),
                              variables, indices)
      chex.assert_shape(images, (2, height, width, 3))
      assert images.dtype == jnp.float32

  def test_output_layer_is_a_direct_submodule(self):
    variables, _ = _abstract(TinyVQGAN(image_channels=1), (1, 8, 8, 1))
    params = variables["params"]
    assert set(params) == {"encoder", "pre_quantization", "quantizer", "post_quantization",
                           "decoder", "output_layer"}
    chex.assert_shape(params["output_layer"]["kernel"], (3, 3, 16, 1))
    chex.assert_shape(params["pre_quantization"]["kernel"], (1, 1, 16, 8))
    chex.assert_shape(params["post_quantization"]["kernel"], (1, 1, 8, 16))

  def test_bfloat16_compute_keeps_float32_params_search_and_reconstruction(self):
    model = TinyVQGAN(dtype=jnp.bfloat16)
    variables, (out, state) = _abstract(model, (2, 8, 8, 3), capture_intermediates=True)
    for leaf in jax.tree.leaves(variables):
      assert leaf.dtype == jnp.float32
    assert out.reconstruction.dtype == jnp.float32
    intermediates = state["intermediates"]
    assert intermediates["encoder"]["__call__"][0].dtype == jnp.bfloat16
    assert intermediates["decoder"]["__call__"][0].dtype == jnp.bfloat16
    assert intermediates["quantizer"]["__call__"][0].quantized.dtype == jnp.float32
    features = jax.eval_shape(
        lambda v, x: model.apply(v, x, train=False, method="decoder_features"), variables,
        jax.ShapeDtypeStruct((2, 8, 8, 3), jnp.float32))
    assert isinstance(features, VQGANFeatures)
    assert features.features.dtype == jnp.bfloat16
    chex.assert_shape(features.features, (2, 8, 8, 16))


# ViT-VQGAN's factorized codes: a low-dimensional, l2-normalized code space.
COSINE = dict(quantizer=vqnn.VectorQuantizer(64, 4, metric="cosine"), embedding_dim=4)


@functools.cache
def _eval_run():
  """One compilation for the eval-mode tests: every method of the cosine-code model."""
  model = TinyVQGAN(**COSINE)

  @_jit
  def run(images):
    variables = model.init(_key(0), images, train=False)
    out, state = model.apply(variables, images, train=False, capture_intermediates=True)
    features = model.apply(variables, images, train=False, method="decoder_features")
    image = model.apply(variables, features.features, method="to_image")
    indices = model.apply(variables, images, method="encode")
    decoded = model.apply(variables, indices, method="decode_indices")
    return dict(variables=variables, out=out, intermediates=state["intermediates"],
                features=features, image=image, indices=indices, decoded=decoded)

  return run(_images((2, 8, 8, 3)))


def test_decoder_features_then_to_image_equals_call():
  run = _eval_run()
  out, features = run["out"], run["features"]
  chex.assert_trees_all_close(run["image"], out.reconstruction, atol=1e-6)
  chex.assert_trees_all_close(
      (features.quantizer_loss, features.quantizer_losses, features.indices, features.metrics),
      (out.quantizer_loss, out.quantizer_losses, out.indices, out.metrics))


def test_encode_then_decode_indices_equals_the_eval_reconstruction():
  run = _eval_run()
  chex.assert_trees_all_equal(run["indices"], run["out"].indices)
  assert run["decoded"].dtype == jnp.float32
  chex.assert_trees_all_close(run["decoded"], run["out"].reconstruction, atol=1e-5)


def test_cosine_codes_are_unit_vectors_found_by_cosine_search():
  run = _eval_run()
  z_e = np.asarray(run["intermediates"]["pre_quantization"]["__call__"][0])
  quantized = np.asarray(run["intermediates"]["quantizer"]["__call__"][0].quantized)
  np.testing.assert_allclose(np.linalg.norm(quantized, axis=-1), 1.0, atol=1e-5)
  codebook = np.asarray(run["variables"]["params"]["quantizer"]["codebook"])
  unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)
  expected = np.argmax(unit(z_e) @ unit(codebook).T, axis=-1)
  np.testing.assert_array_equal(run["out"].indices, expected)
  assert len(np.unique(expected)) > 1  # the search is not trivial


def test_gradients_reach_encoder_codebook_and_decoder():
  # Attention only in the middle block keeps the compile short.
  model = TinyVQGAN(quantizer=vqnn.VectorQuantizer(32, 8, codebook_init_scale=1.0),
                    attention_resolutions=(), dropout_rate=0.1)
  images = _images((2, 8, 8, 3))

  @_jit
  def train(images):
    variables = model.init(_key(0), images, train=False)

    def loss_fn(params):
      out = model.apply({"params": params}, images, train=True, rngs={"dropout": _key(1)})
      return jnp.mean((out.reconstruction - images) ** 2) + out.quantizer_loss, out

    grads, out = jax.grad(loss_fn, has_aux=True)(variables["params"])
    return grads, out

  grads, out = train(images)
  assert bool(jnp.isfinite(out.quantizer_loss))
  for name in ("encoder", "pre_quantization", "post_quantization", "decoder", "output_layer"):
    for path, grad in jax.tree_util.tree_leaves_with_path(grads[name]):
      if path[-1].key == "kernel":
        assert float(jnp.abs(grad).max()) > 0, (name, path)
  assert float(jnp.abs(grads["quantizer"]["codebook"]).max()) > 0


class ErrorTest(chex.TestCase):

  def _raises(self, message, model, shape):
    with pytest.raises(ValueError, match=re.escape(message)):
      _abstract(model, shape)

  def test_image_size_not_divisible_by_the_downsampling_factor(self):
    self._raises("image size 10 is not divisible by the encoder's downsampling factor 4; "
                 "use 8 or 12", TinyVQGAN(channel_multipliers=(1, 1, 2)), (1, 8, 10, 3))

  def test_image_channels_and_rank(self):
    self._raises("images have 1 channels but the model has image_channels=3; build the "
                 "model with image_channels=1", TinyVQGAN(), (1, 8, 8, 1))
    self._raises("images must have shape [batch, height, width, channels]", TinyVQGAN(),
                 (8, 8, 3))

  def test_quantizer_dim_must_match_embedding_dim(self):
    self._raises("embedding_dim is 16 but the quantizer (VectorQuantizer) takes 8 channels "
                 "(its dim); set embedding_dim=8", TinyVQGAN(embedding_dim=16), (1, 8, 8, 3))

  def test_architecture_sizes(self):
    for fields, message in [
        (dict(channel_multipliers=()), "channel_multipliers is empty"),
        (dict(channel_multipliers=(1, -2)), "channel_multipliers is (1, -2)"),
        (dict(channels=0), "channels is 0; it must be a positive int"),
        (dict(num_res_blocks=0), "num_res_blocks is 0; it must be a positive int"),
        (dict(z_channels=0), "z_channels is 0; it must be a positive int"),
        (dict(embedding_dim=0), "embedding_dim is 0; it must be a positive int"),
        (dict(image_channels=0), "image_channels is 0; it must be a positive int"),
        (dict(dropout_rate=-0.1), "dropout_rate is -0.1; it must be in [0, 1)")]:
      self._raises(message, TinyVQGAN(**fields), (1, 8, 8, 3))
