"""Tests for vqjax.models.pooling: nn.max_pool's values as a maximum of strided slices, its
gradient where no window ties, and the errors."""
import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vqjax.models import pooling

CASES = [  # (input shape, window, strides, padding)
    ((2, 8, 8, 5), (2, 2), (2, 2), "VALID"),        # VGG16's pools
    ((2, 9, 7, 5), (2, 2), (2, 2), "VALID"),        # odd sizes: the last row is dropped
    ((2, 15, 15, 4), (3, 3), (2, 2), "VALID"),      # Inception's reducing pools
    ((2, 8, 8, 4), (3, 3), (1, 1), ((1, 1), (1, 1))),  # Inception's mixed_10
    ((2, 9, 6, 3), (3, 2), (2, 1), "SAME"),
    ((3, 10, 2), (4,), (3,), "SAME"),               # one spatial axis
    ((1, 4, 5, 6, 2), (2, 2, 3), (2, 1, 3), "VALID"),  # three
]


def _inputs(shape, seed=0):
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape).astype(np.float32))


@pytest.mark.parametrize("shape,window,strides,padding", CASES)
def test_values_and_gradients_equal_nn_max_pool(shape, window, strides, padding):
  x = _inputs(shape)  # continuous values: no window has two equal maxima
  ours = jax.jit(lambda x: pooling.max_pool(x, window, strides, padding))
  chex.assert_trees_all_equal(ours(x), nn.max_pool(x, window, strides, padding))
  weights = _inputs(nn.max_pool(x, window, strides, padding).shape, seed=1)
  loss = lambda pool: lambda x: jnp.sum(pool(x, window, strides, padding) * weights)
  chex.assert_trees_all_close(jax.grad(loss(pooling.max_pool))(x),
                              jax.grad(loss(nn.max_pool))(x), atol=1e-6, rtol=1e-6)


def test_bfloat16_values_and_no_padding_leak():
  x = _inputs((2, 6, 6, 3)).astype(jnp.bfloat16) - 10.0  # all negative: -inf padding only
  ours = pooling.max_pool(x, (3, 3), (1, 1), "SAME")
  assert ours.dtype == jnp.bfloat16
  chex.assert_trees_all_equal(ours, nn.max_pool(x, (3, 3), (1, 1), "SAME"))
  assert bool(jnp.all(jnp.isfinite(ours)))


def test_ties_after_a_relu_pass_the_same_gradient_to_the_pre_activations():
  # ReLU zeros tie; their pre-activations get no gradient either way.
  pre = _inputs((2, 8, 8, 4)).at[:, :4].set(-1.0)
  weights = _inputs((2, 4, 4, 4), seed=2)
  loss = lambda pool: lambda pre: jnp.sum(pool(jax.nn.relu(pre), (2, 2), (2, 2)) * weights)
  chex.assert_trees_all_close(jax.grad(loss(pooling.max_pool))(pre),
                              jax.grad(loss(nn.max_pool))(pre), atol=1e-6)


def test_errors_name_the_problem():
  x = jnp.zeros((2, 4, 4, 3))
  with pytest.raises(ValueError, match="one entry per spatial axis"):
    pooling.max_pool(x, (2,), (2,))
  with pytest.raises(ValueError, match="larger than the padded input"):
    pooling.max_pool(x, (5, 5), (1, 1))
  with pytest.raises(ValueError, match="must not be negative"):
    pooling.max_pool(x, (2, 2), (1, 1), ((0, -1), (0, 0)))


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("shape,window,strides,padding", CASES)
def test_avg_pool_values_and_gradients_equal_nn_avg_pool(shape, window, strides, padding,
                                                         count_include_pad):
  x = _inputs(shape)
  ours = jax.jit(lambda x: pooling.avg_pool(x, window, strides, padding,
                                            count_include_pad=count_include_pad))
  flax_pool = lambda x: nn.avg_pool(x, window, strides, padding,
                                    count_include_pad=count_include_pad)
  chex.assert_trees_all_close(ours(x), flax_pool(x), atol=1e-6, rtol=1e-6)
  weights = _inputs(flax_pool(x).shape, seed=1)
  loss = lambda pool: lambda x: jnp.sum(pool(x) * weights)
  chex.assert_trees_all_close(jax.grad(loss(ours))(x), jax.grad(loss(flax_pool))(x),
                              atol=1e-6, rtol=1e-6)


def test_avg_pool_without_padding_counts_only_the_inside():
  x = jnp.ones((1, 3, 3, 1))
  chex.assert_trees_all_close(
      pooling.avg_pool(x, (3, 3), (1, 1), "SAME", count_include_pad=False), x)
  corner = pooling.avg_pool(x, (3, 3), (1, 1), "SAME")[0, 0, 0, 0]  # 4 of 9 inside
  np.testing.assert_allclose(corner, 4 / 9, rtol=1e-6)


def test_avg_pool_errors_name_the_problem():
  with pytest.raises(ValueError, match="avg_pool: window"):
    pooling.avg_pool(_inputs((2, 4, 4, 3)), (2,), (1, 1))
  with pytest.raises(ValueError, match="avg_pool: padding"):
    pooling.avg_pool(_inputs((2, 4, 4, 3)), (2, 2), (1, 1), ((-1, 0), (0, 0)))
  with pytest.raises(ValueError, match="larger than the padded input"):
    pooling.avg_pool(_inputs((2, 2, 2, 3)), (3, 3))
