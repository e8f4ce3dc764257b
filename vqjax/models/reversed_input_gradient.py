"""A stride-1 NHWC/HWIO convolution whose input gradient reverses the activations instead
of the kernel: the same outputs and, up to float rounding, the same gradients; cheaper
where the kernel is larger than the activations.

The input gradient of y = corr(x, K) (padding lo, hi; kernel size k) is

    dx = corr(dy, flip(K)^T)                  padding (k - 1 - lo, k - 1 - hi)
       = flip(corr(flip(dy), K^T))            padding (k - 1 - hi, k - 1 - lo)

where flip reverses the spatial axes and ^T swaps the kernel's two feature axes. JAX writes
the first form, and XLA:CPU materializes flip(K)^T with a slow loop (the flip keeps it
off its tiled transpose): 5.4 ms for a 3x3x512x512 kernel against 0.9 ms for K^T alone,
0.57 ms against 0.16 ms at 3x3x256x256 (one core). The second form transposes the
kernel without the flip and flips dy and dx instead, contiguous runs of channels. It is
used where the kernel has more than twice as many entries as the input and output
together (`reversal_is_cheaper`): the 256- and 512-channel layers on the 4x4 and 8x8 maps
of the VQGAN, its PatchGAN and LPIPS's VGG16. The kernel gradient is JAX's own.
"""
from __future__ import annotations

import functools
import math

import jax

_NHWC = ("NHWC", "HWIO", "NHWC")


def output_shape(lhs_shape, rhs_shape, padding) -> tuple[int, ...]:
  """The NHWC output shape of a stride-1 convolution with explicit padding."""
  spatial = tuple(size + low + high - kernel + 1 for size, kernel, (low, high)
                  in zip(lhs_shape[1:3], rhs_shape[:2], padding))
  return (lhs_shape[0], *spatial, rhs_shape[3])


def input_shape(output_shape, rhs_shape, padding) -> tuple[int, ...]:
  """The NHWC input shape of a stride-1 convolution with this output and padding."""
  spatial = tuple(size - low - high + kernel - 1 for size, kernel, (low, high)
                  in zip(output_shape[1:3], rhs_shape[:2], padding))
  return (output_shape[0], *spatial, rhs_shape[2])


def reversal_is_cheaper(lhs_shape, rhs_shape, padding) -> bool:
  """True where flipping dy and dx is clearly cheaper than flipping the kernel: a kernel
  wider than 1x1 with more than twice as many entries as the input and output together
  (near parity the two forms timed the same)."""
  if math.prod(rhs_shape[:2]) == 1:
    return False  # a 1x1 kernel has nothing to flip
  activations = math.prod(lhs_shape) + math.prod(output_shape(lhs_shape, rhs_shape, padding))
  return math.prod(rhs_shape) > 2 * activations


def _convolve(lhs, rhs, padding, precision):
  return jax.lax.conv_general_dilated(lhs, rhs, (1, 1), padding, dimension_numbers=_NHWC,
                                      precision=precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv(lhs, rhs, padding, precision=None):
  """jax.lax.conv_general_dilated(lhs, rhs, (1, 1), padding, dimension_numbers=
  ('NHWC', 'HWIO', 'NHWC')) with the input gradient in the flipped-activation form;
  padding: ((low, high), (low, high)) as a tuple of tuples. lhs and rhs share a dtype,
  which the output and both gradients keep."""
  return _convolve(lhs, rhs, padding, precision)


def _conv_forward(lhs, rhs, padding, precision):
  return _convolve(lhs, rhs, padding, precision), (lhs, rhs)


def _flip(x):
  return x[:, ::-1, ::-1]


def input_gradient(rhs, cotangent, padding, precision=None):
  """dx of the stride-1 convolution with kernel rhs and padding, given dy: the flipped-
  activation form flip(corr(flip(dy), K^T))."""
  gradient_padding = tuple((k - 1 - high, k - 1 - low)
                           for k, (low, high) in zip(rhs.shape[:2], padding))
  return _flip(_convolve(_flip(cotangent), rhs.swapaxes(2, 3), gradient_padding, precision))


def _conv_backward(padding, precision, residuals, cotangent):
  lhs, rhs = residuals
  lhs_cotangent = input_gradient(rhs, cotangent, padding, precision)
  _, kernel_vjp = jax.vjp(lambda kernel: _convolve(lhs, kernel, padding, precision), rhs)
  (rhs_cotangent,) = kernel_vjp(cotangent)
  return lhs_cotangent, rhs_cotangent


conv.defvjp(_conv_forward, _conv_backward)
