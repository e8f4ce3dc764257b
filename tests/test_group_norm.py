"""Tests for vqjax.models.group_norm: nn.GroupNorm's parameters, numbers and gradients, with
the statistics reduced per channel first."""
import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vqjax.models.group_norm import GroupNorm, group_statistics


def _inputs(shape, seed=0, mean=1.0, std=3.0):
  return jnp.asarray(np.random.default_rng(seed).normal(mean, std, shape).astype(np.float32))


@pytest.mark.parametrize("shape,groups", [((2, 6, 5, 64), 32), ((3, 4, 4, 12), 4),
                                          ((2, 7, 8), 1), ((2, 3, 2, 2, 6), 6)])
def test_the_layer_equals_nn_group_norm_with_its_parameters_and_gradients(shape, groups):
  x = _inputs(shape)
  ours, flax_layer = GroupNorm(groups, epsilon=1e-6), nn.GroupNorm(groups, epsilon=1e-6)
  key = jax.random.PRNGKey(0)
  params = ours.init(key, x)
  chex.assert_trees_all_equal(params, flax_layer.init(key, x))
  params = jax.tree.map(lambda p: p + jnp.linspace(0.1, 0.5, p.size).reshape(p.shape), params)
  chex.assert_trees_all_close(ours.apply(params, x), flax_layer.apply(params, x),
                              atol=1e-5, rtol=1e-5)
  weights = _inputs(shape, seed=1, mean=0.0, std=1.0)
  loss = lambda layer: lambda p, x: jnp.sum(nn.swish(layer.apply(p, x)) * weights)
  chex.assert_trees_all_close(jax.grad(loss(ours), argnums=(0, 1))(params, x),
                              jax.grad(loss(flax_layer), argnums=(0, 1))(params, x),
                              atol=1e-4, rtol=1e-4)


def test_statistics_are_two_pass_and_exact_far_from_zero():
  x = _inputs((2, 8, 8, 4), mean=1e4, std=1e-1)
  mean, variance = group_statistics(x, 2)
  expected = np.asarray(x, np.float64).reshape(2, 64, 2, 2)
  np.testing.assert_allclose(mean, expected.mean(axis=(1, 3)), rtol=1e-6)
  np.testing.assert_allclose(variance, expected.var(axis=(1, 3)), rtol=1e-3)


def test_the_output_is_in_the_layers_dtype_with_float32_statistics():
  x = _inputs((2, 4, 4, 8)).astype(jnp.bfloat16)
  layer = GroupNorm(4, dtype=jnp.bfloat16)
  params = layer.init(jax.random.PRNGKey(0), x)
  assert params["params"]["scale"].dtype == jnp.float32
  out = layer.apply(params, x)
  assert out.dtype == jnp.bfloat16
  chex.assert_trees_all_close(out.astype(jnp.float32),
                              nn.GroupNorm(4).apply(params, x.astype(jnp.float32)),
                              atol=0.05, rtol=0.05)


def test_groups_that_do_not_divide_the_channels_are_refused():
  with pytest.raises(ValueError, match="3 groups do not divide 8 channels"):
    GroupNorm(3).init(jax.random.PRNGKey(0), jnp.ones((1, 2, 2, 8)))
