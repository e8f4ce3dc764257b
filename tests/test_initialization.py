"""Tests for vqjax.quantizers.initialization."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vqjax.quantizers import initialization, search


def _clusters(seed=0, centres=8, per_centre=32, dim=4):
  key_centres, key_noise = jax.random.split(jax.random.key(seed))
  means = 10.0 * jax.random.normal(key_centres, (centres, dim))
  noise = 0.05 * jax.random.normal(key_noise, (centres, per_centre, dim))
  return means, (means[:, None] + noise).reshape(-1, dim)


def test_random_codebook_shape_and_range():
  codebook = initialization.random_codebook(jax.random.key(0), 64, 5)
  chex.assert_shape(codebook, (64, 5))
  assert float(jnp.abs(codebook).max()) <= 1.0 / 64


def test_kmeans_finds_well_separated_clusters():
  means, points = _clusters()
  shuffled = jax.random.permutation(jax.random.key(1), points)
  codebook = jax.jit(lambda k, z: initialization.kmeans_codebook(k, z, 8, iterations=5))(
      jax.random.key(2), shuffled)
  # Every true centre has a code within the noise level.
  nearest = search.nearest_code_indices(means, codebook)
  chex.assert_trees_all_close(codebook[nearest], means, atol=0.1)
  assert len(np.unique(np.asarray(nearest))) == 8


def test_kmeans_lowers_distortion_below_seeding():
  points = jax.random.normal(jax.random.key(3), (512, 6))
  seeds = initialization.kmeans_codebook(jax.random.key(4), points, 16, iterations=0)
  fitted = initialization.kmeans_codebook(jax.random.key(4), points, 16, iterations=10)

  def distortion(codebook):
    return float(jnp.mean(jnp.min(search.squared_distances(points, codebook), -1)))

  assert distortion(fitted) < 0.9 * distortion(seeds)


def test_pmapped_kmeans_equals_one_device_on_the_concatenated_batch():
  points = jax.random.normal(jax.random.key(5), (4, 64, 3))
  key = jax.random.key(6)
  pmapped = jax.pmap(
      lambda z: initialization.kmeans_codebook(key, z, 10, iterations=4, axis_name="batch"),
      axis_name="batch")(points)
  single = initialization.kmeans_codebook(key, points.reshape(-1, 3), 10, iterations=4)
  for replica in range(4):
    chex.assert_trees_all_close(pmapped[replica], single)


def test_kmeans_needs_enough_points():
  with pytest.raises(ValueError, match="at least codebook_size=32"):
    initialization.kmeans_codebook(jax.random.key(0), jnp.zeros((10, 3)), 32)


def test_bad_codebook_size_raises():
  with pytest.raises(ValueError, match="at least 1"):
    initialization.random_codebook(jax.random.key(0), 0, 4)
