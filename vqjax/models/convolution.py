"""A drop-in for `jax.lax.conv_general_dilated` that avoids XLA's slow path for
convolutions whose kernel covers more positions than the input has.

XLA's algebraic simplifier swaps the two operands of such a convolution (e.g. a 3x3 kernel
on a 2x2 or 1x1 feature map, as in VGG16's last block at 32x32 and 16x16 images), and the
swapped convolution matches no fast kernel on the CPU: XLA:CPU (jaxlib 0.10) runs it in a
generic loop at ~1 GFLOP/s, ~100x slower than the same convolution at 3x3 or 4x4. For
these inputs `conv_general_dilated` computes the convolution as one matrix product of
shifted input patches with the kernel, the same sum of products; every other convolution
goes to `jax.lax.conv_general_dilated` unchanged.

Pass it to Flax as `nn.Conv(..., conv_general_dilated=convolution.conv_general_dilated)`.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

_NHWC = ("NHWC", "HWIO", "NHWC")


def kernel_exceeds_input(input_shape, kernel_shape) -> bool:
  """True where XLA would swap the operands of an NHWC/HWIO convolution: the kernel's
  spatial positions outnumber the (unpadded) input's."""
  return math.prod(kernel_shape[:-2]) > math.prod(input_shape[1:-1])


def _is_plain(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
              dimension_numbers, feature_group_count, batch_group_count) -> bool:
  """An NHWC/HWIO 2-D convolution with stride 1, no dilation, groups or negative padding."""
  if lhs.ndim != 4 or rhs.ndim != 4 or feature_group_count != 1 or batch_group_count != 1:
    return False
  if dimension_numbers is None or (
      jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
      != jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC)):
    return False
  ones = lambda values: values is None or all(v == 1 for v in values)
  if not (ones(window_strides) and ones(lhs_dilation) and ones(rhs_dilation)):
    return False
  return isinstance(padding, str) or all(low >= 0 and high >= 0 for low, high in padding)


def _conv_as_matmul(lhs, rhs, padding, precision, preferred_element_type):
  """The stride-1 NHWC/HWIO convolution as patches [B, H', W', kh * kw * C] @ kernel."""
  kh, kw, channels, features = rhs.shape
  if isinstance(padding, str):
    padding = jax.lax.padtype_to_pads(lhs.shape[1:3], (kh, kw), (1, 1), padding)
  (top, bottom), (left, right) = padding
  padded = jnp.pad(lhs, ((0, 0), (top, bottom), (left, right), (0, 0)))
  height, width = padded.shape[1] - kh + 1, padded.shape[2] - kw + 1
  patches = jnp.concatenate([padded[:, i:i + height, j:j + width]
                             for i in range(kh) for j in range(kw)], axis=-1)
  return jnp.dot(patches, rhs.reshape(kh * kw * channels, features), precision=precision,
                 preferred_element_type=preferred_element_type)


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                         batch_group_count=1, precision=None, preferred_element_type=None):
  """`jax.lax.conv_general_dilated`, computed as a matrix product where the kernel covers
  more positions than the input (see the module docstring)."""
  if (_is_plain(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                dimension_numbers, feature_group_count, batch_group_count)
      and kernel_exceeds_input(lhs.shape, rhs.shape)):
    return _conv_as_matmul(lhs, rhs, padding, precision, preferred_element_type)
  return jax.lax.conv_general_dilated(
      lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
      dimension_numbers=dimension_numbers, feature_group_count=feature_group_count,
      batch_group_count=batch_group_count, precision=precision,
      preferred_element_type=preferred_element_type)
