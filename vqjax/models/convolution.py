"""A drop-in for `jax.lax.conv_general_dilated` that steers convolutions and their gradients
off slow paths of XLA:CPU (jaxlib 0.10), with the same results.

  kernel larger than the input  XLA's algebraic simplifier swaps the two operands of a
      convolution whose kernel covers more positions than the input has (a 3x3 kernel on
      a 2x2 or 1x1 feature map, as in VGG16's last block at 32x32 and 16x16 images), and
      XLA:CPU runs the swapped one in a generic loop at ~1 GFLOP/s, ~100x slower than the
      same convolution at 3x3 or 4x4. These are computed as one matrix product of shifted
      input patches with the kernel, the same sum of products.
  no padding  XLA:CPU's convolution kernel (YNNPACK) is 2.5-4.5x slower on an unpadded
      ('VALID') kxk convolution than on a padded one (5 x 149x149x32, 3x3 to 32: 94 ms
      against 21 ms; Inception's stem). These get one row and column of high padding,
      which no output of the unpadded convolution reads, and the extra output is cropped:
      the same numbers.
  kernel larger than its activations  the input gradient reads the kernel flipped with
      its feature axes swapped, a copy XLA:CPU makes with a slow loop (3x3x512x512: 5.4 ms
      against 0.9 ms for the transpose alone). Stride-1 convolutions whose kernel has more
      than twice as many entries as their input and output together (the 256- and
      512-channel layers on small grids) flip the activations instead
      (`reversed_input_gradient`).
  1x1 kernel  YNNPACK runs an unpadded 1x1 convolution at less than half the speed of the
      same matrix product on an AVX2 CPU (50 x 17x17x768 to 192, Inception's mixed_6
      branches: 139 ms against 55 ms); it is computed as that product.

On x86 CPUs without AVX-512 (or as VQJAX_KERNEL_GRADIENT says), the kernel gradient of a
stride-1 float32 convolution is compiled so that XLA:CPU gives it to Eigen, which runs it
at about twice YNNPACK's speed there (`eigen_kernel_gradient`).

And where a convolution's output channels would leave XLA:CPU's threads idle (YNNPACK
divides a convolution among threads only by blocks of 64 outputs), it is split over its
batch into convolutions that XLA runs side by side (`batch_split`; the CPU backend with more
than one thread only).

Every other convolution goes to `jax.lax.conv_general_dilated` unchanged. Pass it to Flax as
`nn.Conv(..., conv_general_dilated=convolution.conv_general_dilated)`.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from vqjax.models import batch_split, eigen_kernel_gradient, reversed_input_gradient

_NHWC = ("NHWC", "HWIO", "NHWC")


def kernel_exceeds_input(input_shape, kernel_shape) -> bool:
  """True where XLA would swap the operands of an NHWC/HWIO convolution: the kernel's
  spatial positions outnumber the (unpadded) input's."""
  return math.prod(kernel_shape[:-2]) > math.prod(input_shape[1:-1])


def _is_plain(lhs, rhs, padding, lhs_dilation, rhs_dilation, dimension_numbers,
              feature_group_count, batch_group_count) -> bool:
  """An NHWC/HWIO 2-D convolution without dilation, groups or negative padding."""
  if lhs.ndim != 4 or rhs.ndim != 4 or feature_group_count != 1 or batch_group_count != 1:
    return False
  if dimension_numbers is None or (
      jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
      != jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC)):
    return False
  if not (_ones(lhs_dilation) and _ones(rhs_dilation)):
    return False
  return isinstance(padding, str) or all(low >= 0 and high >= 0 for low, high in padding)


def _ones(values) -> bool:
  return values is None or all(v == 1 for v in values)


def _explicit(padding, lhs, rhs, window_strides):
  if isinstance(padding, str):
    return jax.lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], window_strides, padding)
  return [tuple(pair) for pair in padding]


def _conv_as_matmul(lhs, rhs, padding, precision, preferred_element_type):
  """The stride-1 NHWC/HWIO convolution as patches [B, H', W', kh * kw * C] @ kernel."""
  kh, kw, channels, features = rhs.shape
  (top, bottom), (left, right) = padding
  padded = jnp.pad(lhs, ((0, 0), (top, bottom), (left, right), (0, 0)))
  height, width = padded.shape[1] - kh + 1, padded.shape[2] - kw + 1
  patches = jnp.concatenate([padded[:, i:i + height, j:j + width]
                             for i in range(kh) for j in range(kw)], axis=-1)
  return jnp.dot(patches, rhs.reshape(kh * kw * channels, features), precision=precision,
                 preferred_element_type=preferred_element_type)


def _pointwise_as_matmul(lhs, rhs, window_strides, precision, preferred_element_type):
  """The unpadded 1x1 NHWC/HWIO convolution: the strided positions' channels @ kernel, as
  one [positions, C] @ [C, O] product (XLA:CPU runs the [B, H, W, C] @ [C, O] form and its
  gradients as convolutions again: 2.6 ms against 1.4 ms for 4 x 8x8x256 to 256, forward
  and both gradients, on one AVX2 thread)."""
  rows, columns = window_strides
  strided = lhs[:, ::rows, ::columns]
  batch, height, width, channels = strided.shape
  product = jnp.dot(strided.reshape(batch * height * width, channels), rhs[0, 0],
                    precision=precision, preferred_element_type=preferred_element_type)
  return product.reshape(batch, height, width, rhs.shape[-1])


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                         batch_group_count=1, precision=None, preferred_element_type=None):
  """`jax.lax.conv_general_dilated`, computed as a matrix product for an unpadded 1x1
  kernel and where the kernel covers more positions than the input, with a cropped extra
  row and column where a kxk kernel has no padding, with flipped activations in the input
  gradient where the kernel outweighs them, with the kernel gradient on Eigen where that
  is faster, and split over the batch where its outputs leave CPU threads idle (see the
  module docstring)."""
  if not _is_plain(lhs, rhs, padding, lhs_dilation, rhs_dilation, dimension_numbers,
                   feature_group_count, batch_group_count):
    return _lax(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                dimension_numbers, feature_group_count, batch_group_count, precision,
                preferred_element_type)
  window_strides = tuple(window_strides or (1, 1))
  padding = _explicit(padding, lhs, rhs, window_strides)
  if rhs.shape[:2] == (1, 1) and all(pair == (0, 0) for pair in padding):
    return _pointwise_as_matmul(lhs, rhs, window_strides, precision, preferred_element_type)
  parts = batch_split.parts_here(lhs.shape[0], rhs.shape[-1])
  eigen = _eigen_kernel_gradient(lhs, rhs, window_strides, padding, preferred_element_type)
  if parts > 1 and not eigen:
    return jnp.concatenate(
        [_plain_conv(lhs[start:stop], rhs, window_strides, padding, precision,
                     preferred_element_type, eigen=False)
         for start, stop in batch_split.bounds(lhs.shape[0], parts)], axis=0)
  return _plain_conv(lhs, rhs, window_strides, padding, precision, preferred_element_type,
                     eigen=eigen, parts=parts)


def _cropped_row_and_column(rhs, padding):
  """Which spatial axes of a kxk kernel have no padding, and the padding with one extra
  high row or column there (YNNPACK's unpadded path is slow; the extra output is cropped)."""
  unpadded = [size > 1 and pair == (0, 0) for size, pair in zip(rhs.shape[:2], padding)]
  return unpadded, tuple((0, 1) if pad_it else tuple(pair)
                         for pad_it, pair in zip(unpadded, padding))


def _custom_gradients_fit(lhs, rhs, window_strides, preferred_element_type) -> bool:
  """Stride 1 and one dtype throughout: the convolutions whose gradients vqjax writes."""
  return (_ones(window_strides) and preferred_element_type is None
          and lhs.dtype == rhs.dtype)


def _eigen_kernel_gradient(lhs, rhs, window_strides, padding, preferred_element_type) -> bool:
  """Whether this convolution's kernel gradient goes to Eigen (eigen_kernel_gradient)."""
  if (not _custom_gradients_fit(lhs, rhs, window_strides, preferred_element_type)
      or kernel_exceeds_input(lhs.shape, rhs.shape)):
    return False
  _, padded = _cropped_row_and_column(rhs, padding)
  return (eigen_kernel_gradient.preferred_here()
          and eigen_kernel_gradient.routable(lhs.shape, rhs.shape, padded, lhs.dtype))


def _plain_conv(lhs, rhs, window_strides, padding, precision, preferred_element_type, *,
                eigen: bool, parts=1):
  """An NHWC/HWIO convolution (explicit padding) on the path that suits its shapes; eigen:
  its kernel gradient goes to Eigen (`_eigen_kernel_gradient`), which alone takes parts
  > 1 and splits the batch inside."""
  if _ones(window_strides) and kernel_exceeds_input(lhs.shape, rhs.shape):
    return _conv_as_matmul(lhs, rhs, padding, precision, preferred_element_type)
  unpadded, padded = _cropped_row_and_column(rhs, padding)
  reverse = (_custom_gradients_fit(lhs, rhs, window_strides, preferred_element_type)
             and reversed_input_gradient.reversal_is_cheaper(lhs.shape, rhs.shape, padded))
  if eigen:
    out = eigen_kernel_gradient.conv(lhs, rhs, padded, precision, reverse, parts)
  elif reverse:
    out = reversed_input_gradient.conv(lhs, rhs, padded, precision)
  else:
    out = _lax(lhs, rhs, window_strides, padded, None, None, _NHWC, 1, 1, precision,
               preferred_element_type)
  height, width = ((size - kernel) // stride + 1 if pad_it else out_size
                   for size, kernel, stride, pad_it, out_size in zip(
                       lhs.shape[1:3], rhs.shape[:2], window_strides, unpadded, out.shape[1:3]))
  return out[:, :height, :width]


def _lax(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
         feature_group_count, batch_group_count, precision, preferred_element_type):
  return jax.lax.conv_general_dilated(
      lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
      dimension_numbers=dimension_numbers, feature_group_count=feature_group_count,
      batch_group_count=batch_group_count, precision=precision,
      preferred_element_type=preferred_element_type)
