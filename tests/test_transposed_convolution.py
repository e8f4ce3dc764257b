"""Tests for vqjax.models.transposed_convolution: the per-phase transposed convolution gives
lax.conv_transpose's numbers and gradients, and its layer nn.ConvTranspose's parameters."""
import itertools

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vqjax.models.transposed_convolution import (ConvTranspose, NearestUpsamplingConv,
                                                 conv_transpose, nearest_upsampling_conv,
                                                 transpose_padding)

NHWC = ("NHWC", "HWIO", "NHWC")


def dilated_reference(x, kernel, strides, pads):
  """lax.conv_transpose (transpose_kernel=False) written out in NumPy, float64: the input
  dilated by the strides, padded (negative: cropped), correlated with the kernel."""
  batch, height, width, channels = x.shape
  dilated = np.zeros((batch, (height - 1) * strides[0] + 1, (width - 1) * strides[1] + 1,
                      channels))
  dilated[:, ::strides[0], ::strides[1]] = x
  for axis, (low, high) in zip((1, 2), pads):
    kept = range(max(0, -low), dilated.shape[axis] - max(0, -high))
    dilated = np.take(dilated, kept, axis=axis)
    widths = [(0, 0)] * 4
    widths[axis] = (max(0, low), max(0, high))
    dilated = np.pad(dilated, widths)
  kh, kw = kernel.shape[:2]
  rows, cols = dilated.shape[1] - kh + 1, dilated.shape[2] - kw + 1
  out = np.zeros((batch, rows, cols, kernel.shape[-1]))
  for a, b in itertools.product(range(kh), range(kw)):
    out += np.einsum("bhwc,cf->bhwf", dilated[:, a:a + rows, b:b + cols], kernel[a, b])
  return out


def _pads(kernel_shape, strides, padding):
  if isinstance(padding, str):
    return [transpose_padding(k, s, padding) for k, s in zip(kernel_shape, strides)]
  return padding


CASES = [  # kernel, strides, padding, input height and width
    ((4, 4), (2, 2), "SAME", (5, 7)),
    ((4, 4), (2, 2), "VALID", (5, 7)),
    ((3, 3), (2, 2), "SAME", (4, 4)),
    ((3, 3), (2, 2), "VALID", (1, 3)),
    ((3, 3), (1, 1), "SAME", (5, 6)),
    ((5, 3), (3, 2), "SAME", (4, 5)),
    ((2, 4), (3, 2), "VALID", (3, 3)),
    ((1, 1), (2, 3), "SAME", (4, 2)),         # kernel smaller than the stride: zero phases
    ((4, 3), (2, 2), ((0, 0), (1, 2)), (4, 5)),
    ((5, 4), (3, 2), ((5, 5), (2, 0)), (3, 4)),
    ((2, 2), (2, 2), ((3, 1), (0, 4)), (6, 1)),
]


@pytest.mark.parametrize("kernel_shape,strides,padding,size", CASES)
def test_conv_transpose_equals_the_dilated_convolution_written_out(kernel_shape, strides,
                                                                   padding, size):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, *size, 3)).astype(np.float32)
  kernel = rng.normal(size=(*kernel_shape, 3, 4)).astype(np.float32)
  expected = dilated_reference(x, kernel, strides, _pads(kernel_shape, strides, padding))
  out = conv_transpose(jnp.asarray(x), jnp.asarray(kernel), strides, padding)
  chex.assert_shape(out, expected.shape)
  np.testing.assert_allclose(np.asarray(out), expected, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("kernel_shape,padding", [((4, 4), "SAME"), ((3, 3), "VALID")])
def test_conv_transpose_and_its_gradients_equal_lax(kernel_shape, padding):
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(2, 4, 6, 5)).astype(np.float32))
  kernel = jnp.asarray(rng.normal(size=(*kernel_shape, 5, 3)).astype(np.float32))
  weights = jnp.asarray(rng.normal(size=(2, 8, 12, 3)).astype(np.float32))

  def loss(fn):
    return lambda x, kernel: jnp.sum(weights * jnp.tanh(fn(x, kernel)[:, :8, :12]))

  ours = loss(lambda x, k: conv_transpose(x, k, (2, 2), padding))
  lax = loss(lambda x, k: jax.lax.conv_transpose(x, k, (2, 2), padding,
                                                 dimension_numbers=NHWC))
  chex.assert_trees_all_close(conv_transpose(x, kernel, (2, 2), padding),
                              jax.lax.conv_transpose(x, kernel, (2, 2), padding,
                                                     dimension_numbers=NHWC),
                              atol=1e-5, rtol=1e-5)
  chex.assert_trees_all_close(jax.grad(ours, argnums=(0, 1))(x, kernel),
                              jax.grad(lax, argnums=(0, 1))(x, kernel), atol=1e-4, rtol=1e-4)


def test_the_layer_has_nn_conv_transposes_parameters_and_outputs():
  x = jnp.asarray(np.random.default_rng(2).normal(size=(2, 8, 8, 6)).astype(np.float32))
  ours = ConvTranspose(4, (4, 4), (2, 2), "SAME")
  flax_layer = nn.ConvTranspose(4, (4, 4), (2, 2), "SAME")
  key = jax.random.PRNGKey(0)
  params = ours.init(key, x)
  chex.assert_trees_all_equal(params, flax_layer.init(key, x))
  params = jax.tree.map(lambda p: p + 0.1, params)  # a nonzero bias
  chex.assert_trees_all_close(ours.apply(params, x), flax_layer.apply(params, x),
                              atol=1e-5, rtol=1e-5)


def test_the_layer_computes_in_its_dtype_and_can_drop_the_bias():
  x = jnp.ones((1, 3, 3, 2), jnp.float32)
  layer = ConvTranspose(5, (4, 4), (2, 2), "SAME", use_bias=False, dtype=jnp.bfloat16)
  params = layer.init(jax.random.PRNGKey(0), x)
  assert set(params["params"]) == {"kernel"}
  assert params["params"]["kernel"].dtype == jnp.float32
  out = layer.apply(params, x)
  chex.assert_shape(out, (1, 6, 6, 5))
  assert out.dtype == jnp.bfloat16


def test_the_layer_is_jittable_and_differentiable_in_a_pmap():
  layer = ConvTranspose(3, (4, 4), (2, 2), "SAME")
  x = jnp.ones((jax.local_device_count(), 1, 4, 4, 2))
  params = layer.init(jax.random.PRNGKey(0), x[0])
  grads = jax.pmap(jax.grad(lambda p, x: jnp.sum(layer.apply(p, x) ** 2)),
                   in_axes=(None, 0))(params, x)
  chex.assert_trees_all_equal_shapes(jax.tree.map(lambda g: g[0], grads), params)


@pytest.mark.parametrize("padding,message", [
    ("CIRCULAR", "'SAME' or 'VALID'"),
    (((1, 1),), "2 pairs"),
    (((1, -1), (0, 0)), "non-negative"),
])
def test_bad_padding_is_refused_with_the_fix(padding, message):
  with pytest.raises(ValueError, match=message):
    conv_transpose(jnp.ones((1, 2, 2, 1)), jnp.ones((3, 3, 1, 1)), (2, 2), padding)


def test_mismatched_shapes_and_strides_are_refused():
  with pytest.raises(ValueError, match=r"kernel \[kh, kw, C, F\]"):
    conv_transpose(jnp.ones((1, 2, 2, 3)), jnp.ones((3, 3, 2, 1)), (2, 2), "SAME")
  with pytest.raises(ValueError, match="strides"):
    conv_transpose(jnp.ones((1, 2, 2, 1)), jnp.ones((3, 3, 1, 1)), (0, 2), "SAME")


def _upsample_then_conv(x, kernel):
  upsampled = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
  return jax.lax.conv_general_dilated(upsampled, kernel, (1, 1), "SAME",
                                      dimension_numbers=NHWC)


def test_nearest_upsampling_conv_and_its_gradients_equal_upsampling_then_the_conv():
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.normal(size=(2, 3, 5, 4)).astype(np.float32))
  kernel = jnp.asarray(rng.normal(size=(3, 3, 4, 6)).astype(np.float32))
  weights = jnp.asarray(rng.normal(size=(2, 6, 10, 6)).astype(np.float32))
  chex.assert_trees_all_close(nearest_upsampling_conv(x, kernel), _upsample_then_conv(x, kernel),
                              atol=1e-5, rtol=1e-5)
  loss = lambda fn: lambda x, k: jnp.sum(weights * jnp.tanh(fn(x, k)))
  chex.assert_trees_all_close(
      jax.grad(loss(nearest_upsampling_conv), argnums=(0, 1))(x, kernel),
      jax.grad(loss(_upsample_then_conv), argnums=(0, 1))(x, kernel), atol=1e-4, rtol=1e-4)


def test_the_upsampling_layer_has_nn_convs_parameters_and_outputs():
  x = jnp.asarray(np.random.default_rng(4).normal(size=(2, 4, 4, 5)).astype(np.float32))
  ours = NearestUpsamplingConv(3)
  flax_conv = nn.Conv(3, (3, 3))
  upsampled = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
  key = jax.random.PRNGKey(0)
  params = ours.init(key, x)
  chex.assert_trees_all_equal(params, flax_conv.init(key, upsampled))
  params = jax.tree.map(lambda p: p + 0.1, params)
  chex.assert_trees_all_close(ours.apply(params, x), flax_conv.apply(params, upsampled),
                              atol=1e-5, rtol=1e-5)
  assert NearestUpsamplingConv(3, dtype=jnp.bfloat16).apply(params, x).dtype == jnp.bfloat16


def test_nearest_upsampling_conv_refuses_other_kernels():
  with pytest.raises(ValueError, match="3x3 kernel"):
    nearest_upsampling_conv(jnp.ones((1, 2, 2, 1)), jnp.ones((5, 5, 1, 1)))
