"""Tests for vqjax.models.convolution."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vqjax.models import batch_split, convolution, eigen_kernel_gradient

NHWC = ("NHWC", "HWIO", "NHWC")


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
  """These tests are about the single convolution's path; test_batch_split splits it, and
  test_eigen_kernel_gradient takes the kernel gradient to Eigen."""
  monkeypatch.setattr(batch_split, "host_threads", lambda: 1)
  monkeypatch.setattr(eigen_kernel_gradient, "preferred_here", lambda: False)


def _array(shape, seed):
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def _primitives(fn, *args):
  return {equation.primitive.name for equation in jax.make_jaxpr(fn)(*args).jaxpr.eqns}


@pytest.mark.parametrize("side,kernel,padding", [
    (1, 3, ((1, 1), (1, 1))),   # VGG16's last block at 16x16 images
    (2, 3, ((1, 1), (1, 1))),   # ... at 32x32 images
    (2, 3, "SAME"),
    (2, 4, ((1, 2), (1, 2))),   # PatchGAN's stride-1 convs on small grids
    (1, 3, ((0, 2), (2, 0))),   # asymmetric
])
def test_small_inputs_are_a_matmul_equal_to_the_convolution(side, kernel, padding):
  x, w = _array((2, side, side, 5), 0), _array((kernel, kernel, 5, 7), 1)
  ours = lambda x, w: convolution.conv_general_dilated(x, w, (1, 1), padding,
                                                       dimension_numbers=NHWC)
  lax = lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), padding, dimension_numbers=NHWC)
  assert "conv_general_dilated" not in _primitives(ours, x, w)
  np.testing.assert_allclose(ours(x, w), lax(x, w), rtol=1e-5, atol=1e-5)
  loss = lambda conv: lambda x, w: jnp.sum(jnp.sin(conv(x, w)))
  for ours_grad, lax_grad in zip(jax.grad(loss(ours), (0, 1))(x, w),
                                 jax.grad(loss(lax), (0, 1))(x, w)):
    np.testing.assert_allclose(ours_grad, lax_grad, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape,kernel,strides,padding", [
    ((2, 9, 9, 5), (3, 3), (1, 1), "VALID"),
    ((2, 9, 9, 5), (3, 3), (2, 2), ((0, 0), (0, 0))),   # Inception's stride-2 reductions
    ((2, 8, 9, 5), (3, 3), (2, 2), "VALID"),
    ((2, 9, 9, 5), (1, 7), (1, 1), ((0, 0), (3, 3))),   # only the 7 side needs no padding
    ((2, 9, 9, 5), (7, 1), (1, 1), ((0, 0), (0, 0))),
])
def test_unpadded_kernels_get_a_cropped_extra_row_and_column(shape, kernel, strides, padding):
  x, w = _array(shape, 0), _array((*kernel, shape[-1], 7), 1)
  ours = jax.jit(lambda x, w: convolution.conv_general_dilated(
      x, w, strides, padding, dimension_numbers=NHWC))
  lax = lambda x, w: jax.lax.conv_general_dilated(x, w, strides, padding,
                                                  dimension_numbers=NHWC)
  padded = [(0, 1) if k > 1 and p == (0, 0) else p
            for k, p in zip(kernel, jax.lax.padtype_to_pads(shape[1:3], kernel, strides, padding)
                            if isinstance(padding, str) else padding)]
  hlo_padding = "x".join(f"{low}_{high}" for low, high in padded)
  assert f"pad={hlo_padding}" in ours.lower(x, w).as_text(dialect="hlo")
  np.testing.assert_allclose(ours(x, w), lax(x, w), rtol=1e-6, atol=1e-6)
  loss = lambda conv: lambda x, w: jnp.sum(jnp.sin(conv(x, w)))
  for ours_grad, lax_grad in zip(jax.grad(loss(ours), (0, 1))(x, w),
                                 jax.grad(loss(lax), (0, 1))(x, w)):
    np.testing.assert_allclose(ours_grad, lax_grad, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape,kernel,strides,dimension_numbers", [
    ((2, 3, 3, 5), 3, (1, 1), NHWC),                   # kernel no larger than the input
    ((2, 2, 2, 5), 3, (2, 2), NHWC),                   # strided
    ((2, 5, 2, 2), 3, (1, 1), ("NCHW", "HWIO", "NCHW")),  # another layout
])
def test_other_convolutions_go_to_lax_unchanged(shape, kernel, strides, dimension_numbers):
  x = _array(shape, 0)
  channels = shape[dimension_numbers[0].index("C")]
  w = _array((kernel, kernel, channels, 7), 1)
  args = (x, w, strides, ((1, 1), (1, 1)))
  ours = lambda x, w: convolution.conv_general_dilated(
      x, w, *args[2:], dimension_numbers=dimension_numbers)
  assert "conv_general_dilated" in _primitives(ours, x, w)
  np.testing.assert_array_equal(
      ours(x, w), jax.lax.conv_general_dilated(*args, dimension_numbers=dimension_numbers))


def test_kernel_exceeds_input():
  assert convolution.kernel_exceeds_input((4, 2, 2, 8), (3, 3, 8, 8))
  assert convolution.kernel_exceeds_input((4, 1, 1, 8), (3, 3, 8, 8))
  assert not convolution.kernel_exceeds_input((4, 3, 3, 8), (3, 3, 8, 8))
  assert not convolution.kernel_exceeds_input((4, 4, 4, 8), (4, 4, 8, 8))


def test_flax_conv_takes_it_with_the_same_parameters():
  x = _array((2, 2, 2, 3), 0)
  plain = nn.Conv(4, (3, 3), padding=1)
  ours = nn.Conv(4, (3, 3), padding=1, conv_general_dilated=convolution.conv_general_dilated)
  variables = plain.init(jax.random.PRNGKey(0), x)
  assert jax.tree.structure(variables) == jax.tree.structure(
      ours.init(jax.random.PRNGKey(0), x))
  np.testing.assert_allclose(ours.apply(variables, x), plain.apply(variables, x),
                             rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape,strides,dtype", [
    ((2, 5, 5, 8), (1, 1), jnp.float32),
    ((3, 7, 6, 4), (2, 2), jnp.float32),    # strided: every second position
    ((2, 5, 5, 8), (1, 3), jnp.float32),
    ((2, 4, 4, 8), (1, 1), jnp.bfloat16),
])
def test_unpadded_1x1_kernels_are_a_matmul_equal_to_the_convolution(shape, strides, dtype):
  x, w = _array(shape, 0).astype(dtype), _array((1, 1, shape[-1], 6), 1).astype(dtype)
  ours = lambda x, w: convolution.conv_general_dilated(x, w, strides, "VALID",
                                                       dimension_numbers=NHWC)
  lax = lambda x, w: jax.lax.conv_general_dilated(x, w, strides, "VALID",
                                                  dimension_numbers=NHWC)
  assert "conv_general_dilated" not in _primitives(ours, x, w)
  assert ours(x, w).dtype == dtype and ours(x, w).shape == lax(x, w).shape
  tolerance = 1e-5 if dtype == jnp.float32 else 3e-2
  np.testing.assert_allclose(np.float32(ours(x, w)), np.float32(lax(x, w)), rtol=tolerance,
                             atol=tolerance)
  loss = lambda conv: lambda x, w: jnp.sum(jnp.sin(conv(x, w).astype(jnp.float32)))
  for ours_grad, lax_grad in zip(jax.grad(loss(ours), (0, 1))(x, w),
                                 jax.grad(loss(lax), (0, 1))(x, w)):
    assert ours_grad.dtype == lax_grad.dtype
    np.testing.assert_allclose(np.float32(ours_grad), np.float32(lax_grad),
                               rtol=tolerance * 4, atol=tolerance * 4)


def test_padded_1x1_kernels_stay_convolutions():
  x, w = _array((2, 4, 4, 3), 0), _array((1, 1, 3, 5), 1)
  ours = lambda x, w: convolution.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)),
                                                       dimension_numbers=NHWC)
  assert "conv_general_dilated" in _primitives(ours, x, w)
