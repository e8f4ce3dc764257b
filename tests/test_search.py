"""Tests for vqjax.quantizers.search."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

from vqjax.quantizers import search


def _random(shape, seed):
  return jax.random.normal(jax.random.key(seed), shape)


class NearestCodeTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.parameters(
      (300, 1, 1), (300, 7, 1), (300, 64, 7), (500, 513, 64), (257, 1000, 300), (64, 4096, 256))
  def test_blocked_search_equals_plain_search(self, count, codebook_size, block_size):
    z = _random((count, 16), 0)
    codebook = _random((codebook_size, 16), 1)
    search_fn = self.variant(lambda z, c: search.nearest_code_indices(z, c, block_size=block_size))
    np.testing.assert_array_equal(search_fn(z, codebook),
                                  search._plain_nearest_code_indices(z, codebook))

  def test_plain_search_is_the_argmin_of_squared_distances(self):
    z, codebook = _random((200, 8), 2), _random((50, 8), 3)
    expected = np.argmin(((np.asarray(z)[:, None] - np.asarray(codebook)[None]) ** 2).sum(-1), -1)
    np.testing.assert_array_equal(search._plain_nearest_code_indices(z, codebook), expected)
    chex.assert_trees_all_close(
        search.squared_distances(z, codebook),
        ((np.asarray(z)[:, None] - np.asarray(codebook)[None]) ** 2).sum(-1), atol=1e-4)

  def test_cosine_search_picks_the_largest_cosine(self):
    z, codebook = _random((100, 8), 4), _random((30, 8), 5)
    zn = np.asarray(z) / np.linalg.norm(z, axis=-1, keepdims=True)
    cn = np.asarray(codebook) / np.linalg.norm(codebook, axis=-1, keepdims=True)
    np.testing.assert_array_equal(
        search.nearest_code_indices(z * 3.0, codebook, metric="cosine"), np.argmax(zn @ cn.T, -1))

  def test_any_leading_shape_and_bfloat16(self):
    z = _random((2, 3, 5, 8), 6)
    codebook = _random((40, 8), 7)
    indices = search.nearest_code_indices(z.astype(jnp.bfloat16), codebook)
    chex.assert_shape(indices, (2, 3, 5))
    assert indices.dtype == jnp.int32
    # The search runs in float32 on the bfloat16 values.
    expected = search._plain_nearest_code_indices(z.astype(jnp.bfloat16).astype(jnp.float32), codebook)
    np.testing.assert_array_equal(indices, expected)

  def test_ties_take_the_first_code(self):
    codebook = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    np.testing.assert_array_equal(
        search.nearest_code_indices(jnp.array([[2.0, 0.0]]), codebook), [0])

  def test_large_search_stays_memory_bounded(self):
    # 65,536 inputs against 65,536 codes of dim 256: the full score matrix would be 16 GiB.
    z = jax.ShapeDtypeStruct((65536, 256), jnp.float32)
    codebook = jax.ShapeDtypeStruct((65536, 256), jnp.float32)
    compiled = search.nearest_code_indices.lower(z, codebook).compile()
    temp_bytes = compiled.memory_analysis().temp_size_in_bytes
    assert temp_bytes < 512 * 2**20, temp_bytes


@pytest.mark.parametrize("z_shape, codebook_shape, message", [
    ((4, 8), (10, 6), "last dimension 8"),
    ((4, 8), (10, 8, 1), "rank 2"),
    ((), (10, 8), "rank 0"),
    ((0, 8), (0, 8), "at least 1"),
])
def test_bad_shapes_raise(z_shape, codebook_shape, message):
  with pytest.raises(ValueError, match=message):
    search.nearest_code_indices(jnp.zeros(z_shape), jnp.zeros(codebook_shape))


def test_integer_inputs_raise():
  with pytest.raises(ValueError, match="floating"):
    search.nearest_code_indices(jnp.zeros((4, 8), jnp.int32), jnp.zeros((10, 8)))


def test_unknown_metric_raises():
  with pytest.raises(ValueError, match="unknown metric"):
    search.nearest_code_indices(jnp.zeros((4, 8)), jnp.zeros((10, 8)), metric="l1")
