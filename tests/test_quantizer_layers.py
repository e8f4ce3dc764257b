"""Tests for vqjax.nn.quantizer_layers."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vqjax.nn import quantizer_layers as layers
from vqjax.quantizers import ema, grouped, initialization, levels, residual
from vqjax.quantizers.vector_quantization import quantize

STATE = layers.STATE


def _z(seed=0, shape=(4, 6, 4)):
  return jax.random.normal(jax.random.key(seed), shape)


# Tests jit init and apply: one compilation is much cheaper than running op by op.
def _init(layer, z):
  return jax.jit(lambda z: layer.init(jax.random.key(1), z, train=False))(z)


def _apply(layer, **kwargs):
  """layer.apply(variables, x, **kwargs), jitted."""
  return jax.jit(lambda variables, x: layer.apply(variables, x, **kwargs))


def _train(layer, variables, z, key=0):
  return _apply(layer, train=True, mutable=[STATE], rngs={"quantizer": jax.random.key(key)})(
      variables, z)


def _as_pure(out, pure):
  """The layer's QuantizerOutput laid out like the pure function's NamedTuple `pure`."""
  def field(name):
    if name in ("quantized", "indices"):
      return getattr(out, name)
    return out.losses[name] if name in out.losses else out.metrics[name]
  return tuple(field(name) for name in pure._fields)


class VectorQuantizerTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_ema_state_changes_in_train_mode_only(self):
    layer = layers.VectorQuantizer(8, 4, ema_decay=0.9)
    z = _z()
    variables = _init(layer, z)
    state = ema.EMACodebookState(**variables[STATE])

    out, updated = self.variant(
        lambda v, z: layer.apply(v, z, train=True, mutable=[STATE]))(variables, z)
    expected = ema.update(state, z, quantize(z, state.codebook).indices, decay=0.9)
    chex.assert_trees_all_close(ema.EMACodebookState(**updated[STATE]), expected, rtol=1e-6)
    chex.assert_trees_all_equal(out.indices, quantize(z, state.codebook).indices)

    _, unchanged = _apply(layer, train=False, mutable=[STATE])(variables, z)
    chex.assert_trees_all_equal(unchanged, {STATE: variables[STATE]})
    _apply(layer, train=True)(variables, z)  # state not mutable: no update, no error

  def test_trainable_codebook_gets_gradients_only_from_the_codebook_loss(self):
    layer = layers.VectorQuantizer(8, 4, codebook_init_scale=1.0)
    z = _z()
    params = _init(layer, z)["params"]
    direction = _z(seed=3)

    def terms(params, z):
      out = layer.apply({"params": params}, z, train=True)
      return (jnp.sum(out.quantized * direction), out.losses["codebook_loss"],
              out.losses["commitment_loss"])

    (p_out, z_out), (p_codebook, z_codebook), (p_commit, z_commit) = jax.jit(
        jax.jacrev(terms, argnums=(0, 1)))(params, z)
    assert float(jnp.abs(p_codebook["codebook"]).max()) > 0
    chex.assert_trees_all_equal(jnp.abs(p_commit["codebook"]).max(), 0.0)
    chex.assert_trees_all_equal(jnp.abs(p_out["codebook"]).max(), 0.0)
    chex.assert_trees_all_close(z_out, direction)  # straight-through
    chex.assert_trees_all_equal(jnp.abs(z_codebook).max(), 0.0)
    assert float(jnp.abs(z_commit).max()) > 0

  def test_pmapped_ema_layer_with_restarts_equals_one_device(self):
    layer = layers.VectorQuantizer(8, 4, ema_decay=0.9, dead_code_threshold=0.95,
                                   axis_name="batch")
    single_layer = layer.clone(axis_name=None)
    z = _z(shape=(4, 5, 4))
    variables = _init(single_layer, z)
    keys = jax.random.split(jax.random.key(2), 4)  # replicas' keys differ; replica 0's is used

    def step(variables, z, key):
      return layer.apply(variables, z, train=True, mutable=[STATE], rngs={"quantizer": key})

    (out, state) = jax.pmap(step, axis_name="batch", in_axes=(None, 0, 0))(variables, z, keys)
    single_out, single_state = _apply(
        single_layer, train=True, mutable=[STATE], rngs={"quantizer": keys[0]})(
            variables, z.reshape(-1, 4))
    assert bool(jnp.any(single_state[STATE]["cluster_size"] == jnp.float32(0.95)))  # restarts
    assert int(single_out.metrics["dead_codes"]) > 0
    for replica in range(4):
      chex.assert_trees_all_close(jax.tree.map(lambda x: x[replica], state), single_state,
                                  rtol=1e-5, atol=1e-6)
      chex.assert_trees_all_close(jax.tree.map(lambda x: x[replica], out.metrics),
                                  single_out.metrics)

  def test_restart_replaces_a_forced_dead_code_of_a_trainable_codebook(self):
    layer = layers.VectorQuantizer(4, 4, dead_code_threshold=0.5, codebook_init_scale=1.0)
    z = _z()
    variables = _init(layer, z)
    codebook = variables["params"]["codebook"].at[3].set(10.0)  # never the nearest code
    variables = {"params": {"codebook": codebook},
                 STATE: {**variables[STATE], "usage": jnp.array([1.0, 1.0, 1.0, 0.0])}}
    _, updated = _train(layer, variables, z)
    searched = _apply(layer, method="decode_indices")({**variables, **updated}, jnp.arange(4))
    chex.assert_trees_all_close(searched[:3], codebook[:3])
    distances = np.abs(np.asarray(z).reshape(-1, 4) - np.asarray(searched[3])).max(axis=1)
    assert distances.min() < 1e-5  # params + offset: a batch vector up to rounding
    chex.assert_trees_all_equal(updated[STATE]["codebook_offset"][:3], jnp.zeros((3, 4)))
    assert float(updated[STATE]["usage"][3]) >= 0.5

  def test_restart_replaces_a_forced_dead_code_of_an_ema_codebook(self):
    layer = layers.VectorQuantizer(4, 4, ema_decay=0.9, dead_code_threshold=0.5)
    z = _z()
    codebook, cluster_size = jnp.eye(4).at[3].set(10.0), jnp.array([5.0, 5.0, 5.0, 0.1])
    state = ema.EMACodebookState(codebook, cluster_size, codebook * cluster_size[:, None])
    _, updated = _train(layer, {STATE: state._asdict()}, z)
    flat = np.asarray(z).reshape(-1, 4)
    assert np.any(np.all(np.isclose(flat, updated[STATE]["codebook"][3]), axis=1))
    np.testing.assert_array_equal(updated[STATE]["cluster_size"] == jnp.float32(0.5),
                                  [False, False, False, True])

  def test_kmeans_initialize_and_decode_indices(self):
    z = _z(shape=(32, 4))
    key = jax.random.key(5)
    expected = jax.jit(initialization.kmeans_codebook, static_argnums=2)(key, z, 8)
    for ema_decay in (None, 0.9):
      layer = layers.VectorQuantizer(8, 4, ema_decay=ema_decay)
      variables = jax.jit(lambda v, z, k: layers.with_kmeans_codebook(layer, v, z, k))(
          _init(layer, z), z, key)
      collection = "params" if ema_decay is None else STATE
      chex.assert_trees_all_close(variables[collection]["codebook"], expected)
      if ema_decay is not None:
        chex.assert_trees_all_equal(variables[STATE]["cluster_size"], jnp.ones(8))
      out = _apply(layer, train=False)(variables, z)
      chex.assert_trees_all_close(_apply(layer, method="decode_indices")(variables, out.indices),
                                  out.quantized, atol=1e-6)


class StackedLayersTest(chex.TestCase):

  def test_residual_layer_matches_the_pure_function_and_round_trips(self):
    layer = layers.ResidualVectorQuantizer(3, 8, 4, codebook_init_scale=1.0)
    z = _z()
    variables = _init(layer, z)
    out = _apply(layer, train=False)(variables, z)
    expected = residual.quantize(z, variables["params"]["codebook"])
    chex.assert_trees_all_close(_as_pure(out, expected), tuple(expected))
    chex.assert_shape(out.metrics["perplexity"], (3,))
    chex.assert_trees_all_close(_apply(layer, method="decode_indices")(variables, out.indices),
                                out.quantized, atol=1e-5)

  def test_residual_layer_dropout_in_train_mode_only_and_ema_of_kept_levels(self):
    layer = layers.ResidualVectorQuantizer(3, 8, 4, dropout_levels=True, ema_decay=0.9)
    z = _z()
    variables = _init(layer, z)
    assert bool(jnp.all(_apply(layer, train=False)(variables, z).indices >= 0))
    train = jax.jit(lambda k: layer.apply(variables, z, train=True, mutable=[STATE],
                                          rngs={"quantizer": k}))
    dropped = False
    for seed in range(6):
      out, updated = train(jax.random.key(seed))
      kept = np.asarray(out.indices[0, 0] >= 0)
      dropped |= not kept.all()
      changed = np.any(np.asarray(updated[STATE]["cluster_size"]
                                  != variables[STATE]["cluster_size"]), axis=1)
      np.testing.assert_array_equal(changed, kept)
    assert dropped
    with pytest.raises(ValueError, match="rng stream 'quantizer'"):
      layer.apply(variables, z, train=True)

  def test_grouped_layer_matches_the_pure_function_and_round_trips(self):
    layer = layers.GroupedVectorQuantizer(2, 8, 4, ema_decay=0.9, dead_code_threshold=0.1)
    z = _z()
    variables = _init(layer, z)
    codebooks = variables[STATE]["codebook"]
    chex.assert_shape(codebooks, (2, 8, 2))
    out, updated = _train(layer, variables, z)
    expected = grouped.quantize(z, codebooks)
    chex.assert_trees_all_close(_as_pure(out, expected), tuple(expected))
    chex.assert_trees_all_close(_apply(layer, method="decode_indices")(variables, out.indices),
                                out.quantized, atol=1e-6)
    state = jax.jit(lambda i: levels.ema_update_levels(
        levels.ema_init_levels(codebooks), grouped.split_groups(z, 2), i, decay=0.9))(
            out.indices)
    chex.assert_trees_all_close(updated[STATE]["embed_sum"], state.embed_sum, rtol=1e-6)


def test_bad_inputs_raise():
  z = _z()
  with pytest.raises(ValueError, match="last dimension 4 but the codebook has dimension 6"):
    layers.VectorQuantizer(8, 6).init(jax.random.key(0), z, train=False)
  with pytest.raises(ValueError, match="dim 10 is not divisible by groups=4; use"):
    layers.GroupedVectorQuantizer(4, 8, 10).init(jax.random.key(0), _z(shape=(2, 10)),
                                                 train=False)
  with pytest.raises(ValueError, match="ema_decay is 1.0"):
    layers.VectorQuantizer(8, 4, ema_decay=1.0).init(jax.random.key(0), z, train=False)
  layer = layers.VectorQuantizer(8, 4, dead_code_threshold=0.5)
  variables = _init(layer, z)
  with pytest.raises(ValueError, match="rng stream 'quantizer'"):
    layer.apply(variables, z, train=True, mutable=[STATE])
