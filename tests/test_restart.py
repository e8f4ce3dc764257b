"""Tests for vqjax.quantizers.restart."""
import chex
import jax
import jax.numpy as jnp
import numpy as np

from vqjax.quantizers import ema, restart


def _setup(seed=0):
  z = jax.random.normal(jax.random.key(seed), (4, 8, 3))
  codebook = jax.random.normal(jax.random.key(seed + 1), (6, 3))
  usage = jnp.array([5.0, 0.0, 2.0, 0.1, 3.0, 0.0])
  return z, codebook, usage


def test_only_dead_codes_are_replaced_by_batch_vectors():
  z, codebook, usage = _setup()
  new, dead = jax.jit(lambda k, c, u, z: restart.restart_dead_codes(k, c, u, z, threshold=1.0))(
      jax.random.key(2), codebook, usage, z)
  np.testing.assert_array_equal(dead, [False, True, False, True, False, True])
  chex.assert_trees_all_close(new[~dead], codebook[~dead])
  flat = np.asarray(z).reshape(-1, 3)
  for row in np.asarray(new)[np.asarray(dead)]:
    assert np.any(np.all(np.isclose(flat, row), axis=1)), row


def test_pmapped_restart_equals_one_device_on_the_concatenated_batch():
  z, codebook, usage = _setup()
  key = jax.random.key(3)
  new, dead = jax.pmap(
      lambda z: restart.restart_dead_codes(key, codebook, usage, z, threshold=1.0,
                                           axis_name="batch"),
      axis_name="batch")(z)
  single_new, single_dead = restart.restart_dead_codes(key, codebook, usage, z.reshape(-1, 3),
                                                       threshold=1.0)
  for replica in range(4):
    chex.assert_trees_all_close(new[replica], single_new)
    np.testing.assert_array_equal(dead[replica], single_dead)


def test_ema_restart_keeps_statistics_consistent():
  z, codebook, usage = _setup()
  state = ema.EMACodebookState(codebook, usage, codebook * usage[:, None])
  new_state, dead = restart.restart_dead_codes_ema(jax.random.key(4), state, z, threshold=1.0)
  chex.assert_trees_all_close(new_state.embed_sum / new_state.cluster_size[:, None],
                              new_state.codebook, rtol=1e-6)
  assert float(new_state.cluster_size[dead].min()) >= 1.0
  chex.assert_trees_all_close(new_state.cluster_size[~dead], usage[~dead])


def test_usage_is_an_ema_of_global_counts():
  indices = jnp.array([[0, 0, 1], [2, 0, 1], [0, 0, 0], [1, 1, 1]])
  usage = jax.pmap(lambda i: restart.update_usage(jnp.ones(4), i, decay=0.5, axis_name="b"),
                   axis_name="b")(indices)
  chex.assert_trees_all_close(usage[0], 0.5 + 0.5 * jnp.array([6.0, 5.0, 1.0, 0.0]))
