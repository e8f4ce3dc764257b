"""Tests for vqjax.nn.scalar_quantizer_layers."""
import chex
import jax
import jax.numpy as jnp

from vqjax.nn import scalar_quantizer_layers as layers
from vqjax.quantizers import fsq, gumbel, lfq


def _z(seed=0, shape=(4, 6, 4)):
  return jax.random.normal(jax.random.key(seed), shape)


def _apply(layer, **kwargs):
  """layer.apply(variables, x, **kwargs), jitted."""
  return jax.jit(lambda variables, x: layer.apply(variables, x, **kwargs))


def _as_pure(out, pure):
  """The layer's QuantizerOutput laid out like the pure function's NamedTuple `pure`."""
  def field(name):
    if name in ("quantized", "indices"):
      return getattr(out, name)
    return out.losses[name] if name in out.losses else out.metrics[name]
  return tuple(field(name) for name in pure._fields)


class ImplicitCodebookLayersTest(chex.TestCase):

  def test_fsq_and_lfq_layers_match_their_pure_functions(self):
    z = _z()
    for layer, pure in [(layers.FSQ((5, 4, 3, 3)), jax.jit(fsq.quantize, static_argnums=1)(
        z, (5, 4, 3, 3))), (layers.LFQ(4), jax.jit(lfq.quantize)(z))]:
      out = _apply(layer, train=True)({}, z)
      chex.assert_trees_all_close(_as_pure(out, pure), tuple(pure))
      chex.assert_trees_all_close(_apply(layer, method="decode_indices")({}, out.indices),
                                  out.quantized)
      lfq_only = {"per_sample_entropy", "batch_entropy"} if isinstance(layer, layers.LFQ) else set()
      assert set(out.metrics) == {"perplexity", "codes_used_fraction", "dead_codes"} | lfq_only

  def test_gumbel_layer_samples_in_train_mode_and_takes_argmax_in_eval(self):
    layer = layers.GumbelQuantizer(8, 4)
    logits = _z(shape=(4, 6, 8))
    variables = jax.jit(lambda x: layer.init(jax.random.key(1), x, train=False))(logits)
    out = _apply(layer, train=False)(variables, logits)
    chex.assert_trees_all_equal(out.indices, jnp.argmax(logits, -1))
    expected = jax.jit(gumbel.quantize)(logits, variables["params"]["codebook"])
    chex.assert_trees_all_close(_as_pure(out, expected), tuple(expected))
    sampled = _apply(layer, train=True, rngs={"quantizer": jax.random.key(2)})(variables, logits)
    assert bool(jnp.any(sampled.indices != out.indices))
    chex.assert_trees_all_close(
        _apply(layer, method="decode_indices")(variables, sampled.indices), sampled.quantized,
        atol=1e-6)
