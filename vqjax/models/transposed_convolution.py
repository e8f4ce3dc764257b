"""Transposed convolution as one stride-1 convolution per output phase: the numbers of
`jax.lax.conv_transpose`, without the slow path it meets on XLA:CPU.

    conv_transpose(inputs, kernel, strides, padding) -> outputs   (NHWC, HWIO)
    ConvTranspose   Flax layer with nn.ConvTranspose's parameters ('kernel', 'bias')
    nearest_upsampling_conv(inputs, kernel3x3) -> nearest 2x upsampling, then the 3x3 conv
    NearestUpsamplingConv   its Flax layer, with nn.Conv's parameters

Why: `lax.conv_transpose` is a convolution of the stride-dilated input, and the gradient
of its kernel is a convolution with both a dilated input and a kernel as large as the
output. XLA:CPU (jaxlib 0.10) runs that one in a generic loop at ~1 GFLOP/s: for the
VQ-VAE decoder's 4x4 stride-2 layer from 8x8x128 to 16x16x128 on 32 images, 1.07 s for
the kernel gradient against 0.02 s for the forward pass, most of a train step of the
Sonnet-sized CIFAR-10 tokenizer.

How: with stride s, output position p = s * m + r only meets kernel taps a with
a = (pad_low - r) mod s (the others land on the zeros between dilated inputs), so output
phase r is a stride-1 correlation of the undilated input with the kernel's taps
a0, a0 + s, a0 + 2s, ... The s_h * s_w phases are computed as plain convolutions, whose
gradients XLA runs at full speed, and interleaved. Same sums of the same products as
`lax.conv_transpose` (transpose_kernel=False), in another order: equal to float rounding.

Nearest-neighbour 2x upsampling followed by a 3x3 convolution (taming's Upsample) is one
such transposed convolution of the small input, with the 3x3 kernel's taps summed into a
4x4 one (`nearest_upsampling_kernel`): 16 products per output pixel and channel pair
instead of 36 over the upsampled map, 2.25x fewer. On one XLA:CPU core, 4 x 32x32x128 to
64x64x128, forward and backward: 0.35 s -> 0.16 s.
"""
from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.linen import dtypes
from flax.typing import Dtype, Initializer, PrecisionLike

from vqjax.models import convolution

_NHWC = ("NHWC", "HWIO", "NHWC")


def transpose_padding(kernel: int, stride: int, padding: str) -> tuple[int, int]:
  """(low, high) padding of the dilated input that lax.conv_transpose uses for 'SAME' or
  'VALID' along one axis."""
  if padding == "SAME":
    total = kernel + stride - 2
    low = kernel - 1 if stride > kernel - 1 else math.ceil(total / 2)
  elif padding == "VALID":
    total = kernel + stride - 2 + max(kernel - stride, 0)
    low = kernel - 1
  else:
    raise ValueError(f"padding {padding!r} is not 'SAME' or 'VALID'; pass one of them or "
                     "explicit (low, high) pairs, one per spatial axis")
  return low, total - low


def check_padding(padding, spatial_axes: int = 2) -> None:
  if isinstance(padding, str):
    transpose_padding(1, 1, padding)
    return
  pairs = list(padding)
  if len(pairs) != spatial_axes or any(len(pair) != 2 or min(pair) < 0 for pair in pairs):
    raise ValueError(f"padding {padding!r} must be 'SAME', 'VALID' or {spatial_axes} pairs "
                     "(low, high) of non-negative integers, one per spatial axis")


class _Phase:
  """One output phase r along one axis: its kernel taps first_tap::stride, how many there
  are, the input's low and high padding (negative: cropping) and its output length."""

  def __init__(self, r: int, *, size: int, kernel: int, stride: int, low: int, high: int):
    output_length = (size - 1) * stride + 1 + low + high - kernel + 1
    self.first_tap = (low - r) % stride
    self.taps = max(0, -(-(kernel - self.first_tap) // stride))
    self.length = max(0, -(-(output_length - r) // stride))
    self.pad_low = -((r + self.first_tap - low) // stride)
    self.pad_high = self.length - 1 + self.taps - size - self.pad_low


def _pad_or_crop(x, axis: int, low: int, high: int):
  """x padded with zeros (positive) or cropped (negative) at both ends of axis."""
  start, stop = max(0, -low), x.shape[axis] - max(0, -high)
  x = jax.lax.slice_in_dim(x, start, max(start, stop), axis=axis)
  pads = [(0, 0)] * x.ndim
  pads[axis] = (max(0, low), max(0, high))
  return jnp.pad(x, pads)


def conv_transpose(inputs, kernel, strides: Sequence[int], padding, *, precision=None,
                   preferred_element_type=None):
  """`jax.lax.conv_transpose(inputs, kernel, strides, padding,
  dimension_numbers=('NHWC', 'HWIO', 'NHWC'))`, computed per output phase (module
  docstring). inputs [B, H, W, C], kernel [kh, kw, C, F]; padding 'SAME', 'VALID' or
  ((low, high), (low, high)) of the dilated input, as lax.conv_transpose takes it."""
  if inputs.ndim != 4 or kernel.ndim != 4 or inputs.shape[-1] != kernel.shape[2]:
    raise ValueError(f"conv_transpose takes inputs [B, H, W, C] and a kernel [kh, kw, C, F]; "
                     f"got shapes {inputs.shape} and {kernel.shape}")
  strides = tuple(strides)
  if len(strides) != 2 or min(strides) < 1:
    raise ValueError(f"strides {strides} must be two positive integers")
  check_padding(padding)
  pads = ([transpose_padding(k, s, padding) for k, s in zip(kernel.shape[:2], strides)]
          if isinstance(padding, str) else [tuple(pair) for pair in padding])
  phases = [[_Phase(r, size=size, kernel=k, stride=s, low=low, high=high) for r in range(s)]
            for size, k, s, (low, high) in zip(inputs.shape[1:3], kernel.shape[:2], strides,
                                                 pads)]
  dtype = jnp.result_type(inputs, kernel) if preferred_element_type is None else (
      preferred_element_type)
  rows_out, cols_out = phases[0][0].length, phases[1][0].length  # phase 0 is the longest
  rows = []
  for row in phases[0]:
    cols = []
    for col in phases[1]:
      if row.taps and col.taps and row.length and col.length:
        x = _pad_or_crop(_pad_or_crop(inputs, 1, min(row.pad_low, 0), min(row.pad_high, 0)),
                         2, min(col.pad_low, 0), min(col.pad_high, 0))
        y = convolution.conv_general_dilated(
            x, kernel[row.first_tap::strides[0], col.first_tap::strides[1]], (1, 1),
            ((max(row.pad_low, 0), max(row.pad_high, 0)),
             (max(col.pad_low, 0), max(col.pad_high, 0))),
            dimension_numbers=_NHWC, precision=precision,
            preferred_element_type=preferred_element_type)
      else:  # no kernel tap reaches this phase (kernel smaller than the stride)
        y = jnp.zeros((inputs.shape[0], row.length, col.length, kernel.shape[-1]), dtype)
      cols.append(jnp.pad(y, ((0, 0), (0, rows_out - row.length),
                              (0, cols_out - col.length), (0, 0))))
    rows.append(jnp.stack(cols, axis=3))                  # [B, rows, cols, s_w, F]
  grid = jnp.stack(rows, axis=2)                          # [B, rows, s_h, cols, s_w, F]
  batch, _, _, _, _, features = grid.shape
  height = sum(row.length for row in phases[0])
  width = sum(col.length for col in phases[1])
  return grid.reshape(batch, rows_out * strides[0], cols_out * strides[1],
                      features)[:, :height, :width]


def _kernel_and_bias(layer: nn.Module, kernel_shape: tuple[int, ...], use_bias: bool = True):
  """The layer's 'kernel' and (use_bias) 'bias' [features] parameters, as nn.Conv and
  nn.ConvTranspose create them."""
  kernel = layer.param("kernel", layer.kernel_init, kernel_shape, layer.param_dtype)
  bias = (layer.param("bias", layer.bias_init, (layer.features,), layer.param_dtype)
          if use_bias else None)
  return kernel, bias


class ConvTranspose(nn.Module):
  """A 2-D transposed convolution with nn.ConvTranspose's parameters, initialization and
  numbers (transpose_kernel=False, no dilation), computed by `conv_transpose`:
  checkpoints of nn.ConvTranspose layers load unchanged. Inputs [B, H, W, C]."""
  features: int
  kernel_size: Sequence[int]
  strides: Sequence[int] = (1, 1)
  padding: str | Sequence[tuple[int, int]] = "SAME"
  use_bias: bool = True
  dtype: Dtype | None = None
  param_dtype: Dtype = jnp.float32
  precision: PrecisionLike = None
  kernel_init: Initializer = nn.initializers.lecun_normal()
  bias_init: Initializer = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, inputs):
    kernel, bias = _kernel_and_bias(
        self, tuple(self.kernel_size) + (inputs.shape[-1], self.features), self.use_bias)
    inputs, kernel, bias = dtypes.promote_dtype(inputs, kernel, bias, dtype=self.dtype)
    y = conv_transpose(inputs, kernel, self.strides, self.padding, precision=self.precision)
    return y if bias is None else y + bias


def nearest_upsampling_kernel(kernel):
  """The 4x4 transposed-convolution kernel [4, 4, C, F] equal to nearest-neighbour 2x
  upsampling followed by the 3x3 'SAME' convolution `kernel` [3, 3, C, F].

  Along one axis, upsampled position 2m sees inputs m - 1, m, m with taps k0, k1, k2, and
  2m + 1 sees m, m, m + 1: so y[2m] = k0 x[m-1] + (k1 + k2) x[m] and y[2m+1] =
  (k0 + k1) x[m] + k2 x[m+1], which is lax.conv_transpose's stride-2 'SAME' 4x4 kernel
  (k0, k0 + k1, k1 + k2, k2)."""
  if kernel.shape[:2] != (3, 3):
    raise ValueError(f"nearest_upsampling_kernel takes a 3x3 kernel; got shape {kernel.shape}")
  fold = jnp.array([[1, 0, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1]], kernel.dtype)
  return jnp.einsum("ai,bj,ijcf->abcf", fold, fold, kernel)


def nearest_upsampling_conv(inputs, kernel, *, precision=None):
  """Nearest-neighbour 2x upsampling of inputs [B, H, W, C], then the 3x3 'SAME' convolution
  `kernel` [3, 3, C, F]: [B, 2H, 2W, F], computed as one stride-2 transposed convolution
  over the small input (4 taps per output instead of 9; 2.25x fewer products)."""
  return conv_transpose(inputs, nearest_upsampling_kernel(kernel), (2, 2), "SAME",
                        precision=precision)


class NearestUpsamplingConv(nn.Module):
  """Nearest-neighbour 2x upsampling, then a 3x3 'SAME' convolution, with nn.Conv's
  parameters ('kernel' [3, 3, C, F], 'bias' [F]) and initialization, computed by
  `nearest_upsampling_conv`: checkpoints of an nn.Conv after jnp.repeat load unchanged."""
  features: int
  dtype: Dtype | None = None
  param_dtype: Dtype = jnp.float32
  precision: PrecisionLike = None
  kernel_init: Initializer = nn.initializers.lecun_normal()
  bias_init: Initializer = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, inputs):
    kernel, bias = _kernel_and_bias(self, (3, 3, inputs.shape[-1], self.features))
    folded = nearest_upsampling_kernel(kernel)  # summed in param_dtype, then cast
    inputs, folded, bias = dtypes.promote_dtype(inputs, folded, bias, dtype=self.dtype)
    return conv_transpose(inputs, folded, (2, 2), "SAME", precision=self.precision) + bias
