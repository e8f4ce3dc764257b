"""Tests for vqjax.quantizers.ema."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vqjax.quantizers import ema, search


def _numpy_ema(codebook, cluster_size, embed_sum, z, indices, decay, epsilon):
  """The update written out from the formulas, in float64."""
  z = np.asarray(z, np.float64).reshape(-1, codebook.shape[1])
  indices = np.asarray(indices).reshape(-1)
  counts = np.zeros(codebook.shape[0])
  sums = np.zeros(codebook.shape)
  for vector, index in zip(z, indices):
    counts[index] += 1
    sums[index] += vector
  cluster_size = decay * np.asarray(cluster_size, np.float64) + (1 - decay) * counts
  embed_sum = decay * np.asarray(embed_sum, np.float64) + (1 - decay) * sums
  total = cluster_size.sum()
  smoothed = (cluster_size + epsilon) / (total + codebook.shape[0] * epsilon) * total
  return embed_sum / smoothed[:, None], cluster_size, embed_sum


def _batch(seed=0, shape=(8, 5, 4), codebook_size=12):
  z_key, codebook_key = jax.random.split(jax.random.key(seed))
  z = jax.random.normal(z_key, shape)
  codebook = jax.random.normal(codebook_key, (codebook_size, shape[-1]))
  return z, codebook


class EMATest(chex.TestCase):

  def test_init_keeps_codes_consistent_with_statistics(self):
    _, codebook = _batch()
    state = ema.init(codebook)
    chex.assert_trees_all_close(state.embed_sum / state.cluster_size[:, None], codebook)

  @chex.variants(with_jit=True, without_jit=True)
  def test_update_equals_numpy_reference(self):
    z, codebook = _batch()
    state = ema.init(codebook)
    update = self.variant(lambda s, z, i: ema.update(s, z, i, decay=0.9, epsilon=1e-5))
    for step in range(3):
      batch = z + step
      indices = search.nearest_code_indices(batch, state.codebook)
      expected = _numpy_ema(*state, batch, indices, 0.9, 1e-5)
      state = update(state, batch, indices)
      chex.assert_trees_all_close(tuple(state), expected, rtol=1e-5, atol=1e-6)

  def test_update_moves_used_codes_towards_their_inputs(self):
    z, codebook = _batch()
    state = ema.init(codebook)
    indices = search.nearest_code_indices(z, codebook)
    for _ in range(300):
      state = ema.update(state, z, indices, decay=0.9)
    used = np.unique(np.asarray(indices))
    flat, flat_indices = np.asarray(z).reshape(-1, 4), np.asarray(indices).reshape(-1)
    means = np.stack([flat[flat_indices == i].mean(0) for i in used])
    chex.assert_trees_all_close(state.codebook[used], means, atol=1e-3)

  def test_pmapped_update_equals_one_device_on_the_concatenated_batch(self):
    z, codebook = _batch(shape=(4, 16, 4))
    state = ema.init(codebook)
    indices = search.nearest_code_indices(z, codebook)
    pmapped = jax.pmap(lambda s, z, i: ema.update(s, z, i, axis_name="batch"),
                       axis_name="batch", in_axes=(None, 0, 0))(state, z, indices)
    single = ema.update(state, z, indices)
    for replica in range(4):
      chex.assert_trees_all_close(jax.tree.map(lambda x: x[replica], pmapped), single,
                                  rtol=1e-6, atol=1e-6)

  def test_bfloat16_inputs_update_in_float32(self):
    z, codebook = _batch()
    state = ema.update(ema.init(codebook), z.astype(jnp.bfloat16),
                       search.nearest_code_indices(z, codebook))
    assert all(leaf.dtype == jnp.float32 for leaf in state)


def test_bad_decay_raises():
  z, codebook = _batch()
  with pytest.raises(ValueError, match="decay"):
    ema.update(ema.init(codebook), z, jnp.zeros(z.shape[:-1], jnp.int32), decay=1.0)


def test_mismatched_indices_raise():
  z, codebook = _batch()
  with pytest.raises(ValueError, match="indices hold"):
    ema.update(ema.init(codebook), z, jnp.zeros((3,), jnp.int32))
