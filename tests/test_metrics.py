"""Tests for vqjax.quantizers.metrics."""
import chex
import jax
import jax.numpy as jnp
import numpy as np

from vqjax.quantizers import metrics


def test_uniform_usage_has_perplexity_k():
  result = metrics.codebook_metrics(jnp.arange(16) % 8, 8)
  chex.assert_trees_all_close(result["perplexity"], 8.0, rtol=1e-6)
  chex.assert_trees_all_close(result["codes_used_fraction"], 1.0)
  assert int(result["dead_codes"]) == 0


def test_one_code_has_perplexity_one_and_dead_codes():
  result = metrics.codebook_metrics(jnp.full((5, 3), 2), 10)
  chex.assert_trees_all_close(result["perplexity"], 1.0)
  chex.assert_trees_all_close(result["codes_used_fraction"], 0.1)
  assert int(result["dead_codes"]) == 9


def test_known_distribution():
  indices = jnp.array([0, 0, 0, 1])  # p = (3/4, 1/4)
  entropy = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
  chex.assert_trees_all_close(metrics.codebook_metrics(indices, 4)["perplexity"],
                              np.exp(entropy), rtol=1e-6)


def test_pmapped_metrics_are_global():
  indices = jnp.array([[0, 0], [1, 1], [2, 2], [3, 3]])  # each device sees one code
  result = jax.pmap(lambda i: metrics.codebook_metrics(i, 4, axis_name="b"), axis_name="b")(
      indices)
  chex.assert_trees_all_close(result["perplexity"], jnp.full(4, 4.0), rtol=1e-6)
  np.testing.assert_array_equal(result["dead_codes"], 0)
