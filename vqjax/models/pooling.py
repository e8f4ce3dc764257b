"""Max and average pooling as the maximum or sum of strided slices: `nn.max_pool`'s and
`nn.avg_pool`'s values, off slow paths of XLA:CPU (jaxlib 0.10).

  a pooled input to a chain of convolutions  XLA:CPU hands a `reduce_window` together with
      the convolutions that follow it to YNNPACK as one fused graph, which it runs several
      times slower than the same convolutions apart: VGG16's last block (pool, then three
      3x3 convolutions of 512 channels on 4 x 4x4) takes 67 ms instead of 13, and LPIPS's
      forward pass of 4 images at 64x64 180 ms instead of 105.
  the gradient of `reduce_window`  runs as XLA's select-and-scatter, 10-12x slower than the
      gradient of the same maximum written elementwise (4 x 64x64x64, 2x2 pool: 9.8 ms
      against 0.8 ms).

`max_pool` takes the elementwise maximum of the window's strided slices of the (-inf
padded) input instead: the same values. Its gradient differs from `reduce_window`'s only
where two inputs of a window tie for its maximum (split between them instead of given to
one); after a ReLU those ties are zeros, whose inputs the ReLU passes no gradient anyway.

`avg_pool` sums the window's strided slices of the zero-padded input and divides by the
window's size, or by how many of its positions are inside the input
(`count_include_pad=False`, Inception's pools), where XLA:CPU runs `reduce_window` in a
generic loop: Inception's 3x3 pools on one core of an AVX2 EPYC, 50 x 35x35x288 114 -> 98
ms, 50 x 17x17x768 94 -> 66 ms, 50 x 8x8x2048 30 -> 29 ms, with the same values.
"""
from __future__ import annotations

import itertools
import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def max_pool(x, window: Sequence[int], strides: Sequence[int] | None = None,
             padding: str | Sequence[tuple[int, int]] = "VALID"):
  """`flax.linen.max_pool` of a floating x [batch, *spatial, features] (its window, strides
  and padding), computed as the maximum of strided slices (see the module docstring)."""
  window, strides, padding = _checked("max_pool", x, window, strides, padding)
  padded = jnp.pad(x, ((0, 0), *padding, (0, 0)), constant_values=-jnp.inf)
  result = None
  for part in _window_slices("max_pool", padded, window, strides):
    result = part if result is None else jnp.maximum(result, part)
  return result


def avg_pool(x, window: Sequence[int], strides: Sequence[int] | None = None,
             padding: str | Sequence[tuple[int, int]] = "VALID", *,
             count_include_pad: bool = True):
  """`flax.linen.avg_pool` of a floating x [batch, *spatial, features] (its window, strides,
  padding and count_include_pad), computed as the sum of strided slices of the zero-padded
  input over each window's count, rather than XLA:CPU's `reduce_window` (Inception's 3x3
  average pools of 50 x 35x35x288 on one core: see the module docstring)."""
  window, strides, padding = _checked("avg_pool", x, window, strides, padding)
  padded = jnp.pad(x, ((0, 0), *padding, (0, 0)))
  total = None
  for part in _window_slices("avg_pool", padded, window, strides):
    total = part if total is None else total + part
  if count_include_pad:
    return total / math.prod(window)
  inside = np.pad(np.ones((1, *x.shape[1:-1], 1), np.float32), ((0, 0), *padding, (0, 0)))
  counts = sum(_window_slices("avg_pool", inside, window, strides))
  return total / jnp.asarray(counts, total.dtype)


def _checked(name, x, window, strides, padding):
  """window, strides and explicit padding pairs, checked against x's spatial axes."""
  window = tuple(window)
  strides = tuple(strides) if strides is not None else (1,) * len(window)
  spatial = x.shape[1:-1]
  if not len(window) == len(strides) == len(spatial):
    raise ValueError(f"{name}: window {window} and strides {strides} need one entry per "
                     f"spatial axis of x {x.shape} ([batch, *spatial, features])")
  if isinstance(padding, str):
    padding = jax.lax.padtype_to_pads(spatial, window, strides, padding)
  padding = [tuple(pair) for pair in padding]
  if any(low < 0 or high < 0 for low, high in padding):
    raise ValueError(f"{name}: padding {padding} must not be negative")
  return window, strides, padding


def _window_slices(name, padded, window, strides):
  """For each offset in the window, the strided slice of padded that it reads."""
  sizes = [(size - span) // stride + 1
           for size, span, stride in zip(padded.shape[1:-1], window, strides)]
  if any(size < 1 for size in sizes):
    raise ValueError(f"{name}: window {window} is larger than the padded input "
                     f"{padded.shape[1:-1]}")
  for offsets in itertools.product(*(range(span) for span in window)):
    index = tuple(slice(offset, offset + (size - 1) * stride + 1, stride)
                  for offset, size, stride in zip(offsets, sizes, strides))
    yield padded[(slice(None), *index, slice(None))]
