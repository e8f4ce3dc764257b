"""The one quantizer contract (vqjax.nn.output) and the registry (vqjax.nn.registry).

A new quantizer needs exactly three things, all of which this file writes for a toy sign
quantizer: its pure module (a function of arrays, like vqjax.quantizers.lfq), its Flax
layer (returning a QuantizerOutput, with input_dim, num_codes and decode_indices), and
registering that layer under a name. No edit to vqjax.models or to the config builder
(vqjax.runner.build): a config names the quantizer, and VQVAE, VQ-VAE-2 and VQGAN read
its losses, metrics and input size through the contract.
"""
from __future__ import annotations

from collections.abc import Hashable

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from vqjax import nn as vqnn
from vqjax.models import tokenizers
from vqjax.runner import build

# The toy quantizer's pure module: every channel goes to its sign, straight-through.


def sign_quantize(z: jax.Array, *, beta: float = 0.25):
  """(quantized +-1 [..., dim], int32 indices [...], commitment_loss) for z [..., dim]."""
  code = jnp.where(z > 0, 1.0, -1.0).astype(z.dtype)
  bits = (code > 0).astype(jnp.int32) << jnp.arange(z.shape[-1], dtype=jnp.int32)
  commitment_loss = beta * jnp.mean(jnp.square(z - jax.lax.stop_gradient(code)))
  return z + jax.lax.stop_gradient(code - z), jnp.sum(bits, axis=-1), commitment_loss


def sign_indices_to_codes(indices: jax.Array, dim: int) -> jax.Array:
  bits = (indices[..., None] >> jnp.arange(dim, dtype=jnp.int32)) & 1
  return jnp.where(bits > 0, 1.0, -1.0)


# Its layer: the contract, nothing model-specific.

class SignQuantizer(nn.Module):
  dim: int
  beta: float = 0.25
  axis_name: Hashable | None = None

  @property
  def input_dim(self) -> int:
    return self.dim

  @property
  def num_codes(self) -> int:
    return 2 ** self.dim

  def __call__(self, z, *, train: bool) -> vqnn.QuantizerOutput:
    del train
    quantized, indices, commitment_loss = sign_quantize(z, beta=self.beta)
    positive = jnp.mean((quantized > 0).astype(jnp.float32))
    if self.axis_name is not None:
      positive = jax.lax.pmean(positive, self.axis_name)
    return vqnn.QuantizerOutput(quantized, indices, {"commitment_loss": commitment_loss},
                                {"positive_fraction": positive})

  def decode_indices(self, indices):
    return sign_indices_to_codes(indices, self.dim)


@pytest.fixture
def toy_registered():
  vqnn.register_quantizer("toy_sign", SignQuantizer)
  yield
  del vqnn.QUANTIZER_LAYERS["toy_sign"]


def test_a_new_quantizer_plugs_into_the_builder_and_the_model(toy_registered):
  model = build.build_model({
      "name": "vqvae", "image_channels": 1, "embedding_dim": 4, "hidden_channels": 8,
      "residual_channels": 4, "num_residual_layers": 1, "downsample_factor": 2,
      "quantizer": {"name": "toy_sign", "dim": 4, "beta": 0.5}}, axis_name=None)
  assert model.quantizer == SignQuantizer(4, beta=0.5)
  assert tokenizers.codebook_size(model.quantizer) == 16
  images = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1), minval=-1.0, maxval=1.0)

  @jax.jit
  def step(images):
    variables = model.init(jax.random.key(1), images, train=False)

    def loss_fn(params):
      out = model.apply({"params": params}, images, train=True)
      return jnp.mean((out.reconstruction - images) ** 2) + out.quantizer_loss, out

    grads, out = jax.grad(loss_fn, has_aux=True)(variables["params"])
    indices = model.apply(variables, images, method="encode")
    decoded = model.apply(variables, indices, method="decode_indices")
    return grads, out, indices, decoded

  grads, out, indices, decoded = step(images)
  assert set(out.quantizer_losses) == {"commitment_loss"}
  chex.assert_trees_all_close(out.quantizer_loss, out.quantizer_losses["commitment_loss"])
  assert set(out.metrics) == {"positive_fraction"}
  chex.assert_shape(out.indices, (2, 4, 4))
  chex.assert_trees_all_equal(indices, out.indices)
  chex.assert_trees_all_close(decoded, out.reconstruction, atol=1e-5)
  chex.assert_tree_all_finite(grads)
  # The straight-through estimate carries the decoder's gradient back to the encoder.
  assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads["encoder"])) > 0


def test_the_model_names_the_fix_when_embedding_dim_and_input_dim_differ(toy_registered):
  model = build.build_model({"name": "vqvae", "embedding_dim": 8,
                             "quantizer": {"name": "toy_sign", "dim": 4}}, axis_name=None)
  images = jax.ShapeDtypeStruct((1, 16, 16, 3), jnp.float32)
  message = r"takes 4 channels \(its input_dim\); set embedding_dim=4"
  with pytest.raises(ValueError, match=message):
    jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), images)


def test_a_name_is_registered_once():
  with pytest.raises(ValueError, match="'vq' is already registered to .*VectorQuantizer"):
    vqnn.register_quantizer("vq", SignQuantizer)
  assert vqnn.register_quantizer("vq", vqnn.VectorQuantizer) is vqnn.VectorQuantizer


# Every built-in layer keeps the contract: fields, input_dim, num_codes, extra index axes.
BUILT_IN = {
    "vq": (dict(codebook_size=8, dim=4), 4, 8, ()),
    "residual": (dict(levels=2, codebook_size=8, dim=4), 4, 8, (2,)),
    "grouped": (dict(groups=2, codebook_size=8, dim=4), 4, 8, (2,)),
    "fsq": (dict(levels=(3, 3, 2)), 3, 18, ()),
    "lfq": (dict(dim=4), 4, 16, ()),
    "gumbel": (dict(codebook_size=8, dim=4), 8, 8, ()),
}


def test_the_built_in_layers_are_registered_under_their_config_names():
  assert set(BUILT_IN) <= set(vqnn.QUANTIZER_LAYERS)
  assert build.QUANTIZERS is vqnn.QUANTIZER_LAYERS


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_every_registered_layer_keeps_the_contract(name):
  fields, input_dim, num_codes, index_axes = BUILT_IN[name]
  layer = build.build_quantizer({"name": name, **fields}, axis_name=None)
  assert isinstance(layer, vqnn.QUANTIZER_LAYERS[name])
  assert (layer.input_dim, layer.num_codes) == (input_dim, num_codes)
  x = jax.random.normal(jax.random.key(0), (2, 3, input_dim))

  @jax.jit
  def forward(x):
    variables = layer.init(jax.random.key(1), x, train=False)
    out = layer.apply(variables, x, train=False)
    return out, layer.apply(variables, out.indices, method="decode_indices")

  out, decoded = forward(x)
  assert isinstance(out, vqnn.QuantizerOutput)
  assert isinstance(out.losses, dict) and isinstance(out.metrics, dict)
  for loss in out.losses.values():
    chex.assert_shape(loss, ())
    assert loss.dtype == jnp.float32
  assert {"perplexity", "codes_used_fraction", "dead_codes"} <= set(out.metrics)
  chex.assert_tree_all_finite(out)
  chex.assert_shape(out.indices, (2, 3, *index_axes))
  assert out.indices.dtype == jnp.int32
  assert bool(jnp.all((out.indices >= 0) & (out.indices < num_codes)))
  # Evaluation picks hard codes, so decoding the indices gives `quantized` back.
  chex.assert_equal_shape([decoded, out.quantized])
  chex.assert_trees_all_close(decoded, out.quantized, atol=1e-5)
