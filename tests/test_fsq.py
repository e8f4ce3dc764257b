"""Tests for vqjax/quantizers/fsq.py: the grid is complete, indices round-trip, gradients
pass straight through the rounding."""
from __future__ import annotations

import functools

from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np

from vqjax.quantizers import fsq

LEVELS = (8, 5, 5, 5)


def normal(seed, shape):
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def dense_grid(levels, points: int = 20, limit: float = 2.0):
  """Every combination of `points` values per channel in [-limit, limit]."""
  axis = np.linspace(-limit, limit, points, dtype=np.float32)
  mesh = np.meshgrid(*([axis] * len(levels)), indexing="ij")
  return jnp.asarray(np.stack(mesh, axis=-1).reshape(-1, len(levels)))


class FSQTest(chex.TestCase):

  @parameterized.parameters(LEVELS, (7, 6, 2), (2, 2))
  def test_dense_grid_reaches_every_code(self, *levels):
    # Rounding bins are at least 1 / half_l >= 0.28 wide in z, wider than the grid spacing
    # 0.21, and every outermost bin starts within |z| < 1.5.
    z = dense_grid(levels)
    out = jax.jit(functools.partial(fsq.quantize, levels=levels))(z)
    size = fsq.codebook_size(levels)
    self.assertEqual(np.unique(np.asarray(out.quantized), axis=0).shape[0], size)
    np.testing.assert_array_equal(np.unique(np.asarray(out.indices)), np.arange(size))
    chex.assert_trees_all_close(out.quantized, fsq.indices_to_codes(out.indices, levels))

  @parameterized.parameters(LEVELS, (7, 6, 2), (3,))
  def test_indices_codes_round_trip(self, *levels):
    size = fsq.codebook_size(levels)
    self.assertEqual(size, int(np.prod(levels)))

    @jax.jit
    def round_trip():
      codes = fsq.codebook(levels)
      return codes, fsq.codes_to_indices(codes, levels)

    codes, indices = round_trip()
    chex.assert_shape(codes, (size, len(levels)))
    np.testing.assert_array_equal(indices, np.arange(size))
    self.assertEqual(np.unique(np.asarray(codes), axis=0).shape[0], size)
    self.assertLessEqual(float(jnp.max(jnp.abs(codes))), 1.0)

  def test_channel_values_match_the_paper(self):
    codes = fsq.codebook((8, 5))
    np.testing.assert_allclose(np.unique(codes[:, 0]), np.arange(-4, 4) / 4)
    np.testing.assert_allclose(np.unique(codes[:, 1]), np.arange(-2, 3) / 2)
    self.assertEqual(int(fsq.quantize(jnp.zeros((2,)), (8, 5)).indices),
                     int(fsq.codes_to_indices(jnp.zeros((2,)), (8, 5))))

  @chex.variants(with_jit=True, without_jit=True)
  def test_gradient_is_straight_through_the_rounding(self):
    z = normal(0, (3, 5, len(LEVELS)))
    weights = normal(1, z.shape)

    def quantized_loss(x):
      return jnp.sum(fsq.quantize(x, LEVELS).quantized * weights)

    def bounded_loss(x):
      half_width = jnp.asarray([level // 2 for level in LEVELS], jnp.float32)
      return jnp.sum(fsq.bound(x, LEVELS) / half_width * weights)

    grad = self.variant(jax.grad(quantized_loss))(z)
    chex.assert_trees_all_close(grad, jax.grad(bounded_loss)(z), rtol=1e-5, atol=1e-7)
    self.assertTrue(bool(jnp.all(grad != 0)))

  @parameterized.parameters(jnp.float32, jnp.bfloat16)
  def test_dtypes(self, dtype):
    z = normal(2, (2, 3, 4, len(LEVELS))).astype(dtype)
    out = jax.jit(functools.partial(fsq.quantize, levels=LEVELS))(z)
    chex.assert_shape(out.quantized, z.shape)
    chex.assert_shape(out.indices, z.shape[:-1])
    chex.assert_type([out.quantized, out.indices], [dtype, jnp.int32])
    reference = fsq.quantize(z.astype(jnp.float32), LEVELS)
    np.testing.assert_array_equal(out.indices, reference.indices)
    chex.assert_trees_all_close(out.quantized.astype(jnp.float32), reference.quantized,
                                atol=1e-2)
    grad = jax.grad(lambda x: jnp.sum(fsq.quantize(x, LEVELS).quantized.astype(jnp.float32)))(z)
    chex.assert_type(grad, dtype)

  def test_vmap_and_pmap_match_the_batched_call(self):
    z = normal(3, (4, 6, len(LEVELS)))
    expected = fsq.quantize(z, LEVELS)
    quantize = functools.partial(fsq.quantize, levels=LEVELS)
    chex.assert_trees_all_close(jax.vmap(quantize)(z), expected)
    chex.assert_trees_all_close(jax.pmap(quantize)(z), expected)

  def test_metrics_over_devices(self):
    indices = jnp.arange(8, dtype=jnp.int32).reshape(4, 2)
    levels = (2, 2, 2)
    global_metrics = jax.pmap(
        functools.partial(fsq.codebook_metrics, levels=levels, axis_name="d"), axis_name="d")(indices)
    chex.assert_trees_all_close(jax.tree.map(lambda x: x[0], global_metrics),
                                fsq.codebook_metrics(indices, levels))
    self.assertEqual(int(global_metrics["dead_codes"][0]), 0)
    chex.assert_trees_all_close(global_metrics["perplexity"][0], 8.0, rtol=1e-5)

  def test_level_below_two_is_rejected(self):
    message = r"levels\[2\] is 1; every FSQ level must be at least 2"
    with self.assertRaisesRegex(ValueError, message):
      fsq.quantize(jnp.zeros((3,)), (8, 5, 1))
    with self.assertRaisesRegex(ValueError, "must be integers"):
      fsq.codebook((8, 2.5))
    with self.assertRaisesRegex(ValueError, "one level per channel"):
      fsq.codebook_size(())

  def test_wrong_last_dimension_is_rejected(self):
    with self.assertRaisesRegex(ValueError, "last dimension 3 but levels .* has 4 entries"):
      fsq.quantize(jnp.zeros((2, 3)), LEVELS)
    with self.assertRaisesRegex(ValueError, "last dimension 3"):
      fsq.codes_to_indices(jnp.zeros((2, 3)), LEVELS)

  def test_integer_input_is_rejected(self):
    with self.assertRaisesRegex(ValueError, "int32; quantizers take floating inputs"):
      fsq.quantize(jnp.zeros((2, 4), jnp.int32), LEVELS)
    with self.assertRaisesRegex(ValueError, "code indices must be integers"):
      fsq.indices_to_codes(jnp.zeros((2,)), LEVELS)
