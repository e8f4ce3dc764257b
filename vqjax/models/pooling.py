"""Max pooling as the maximum of strided slices: `nn.max_pool`'s values, off two slow paths
of XLA:CPU (jaxlib 0.10).

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
"""
from __future__ import annotations

import itertools
from typing import Sequence

import jax
import jax.numpy as jnp


def max_pool(x, window: Sequence[int], strides: Sequence[int] | None = None,
             padding: str | Sequence[tuple[int, int]] = "VALID"):
  """`flax.linen.max_pool` of a floating x [batch, *spatial, features] (its window, strides
  and padding), computed as the maximum of strided slices (see the module docstring)."""
  window = tuple(window)
  strides = tuple(strides) if strides is not None else (1,) * len(window)
  spatial = x.shape[1:-1]
  if not len(window) == len(strides) == len(spatial):
    raise ValueError(f"max_pool: window {window} and strides {strides} need one entry per "
                     f"spatial axis of x {x.shape} ([batch, *spatial, features])")
  if isinstance(padding, str):
    padding = jax.lax.padtype_to_pads(spatial, window, strides, padding)
  padding = [tuple(pair) for pair in padding]
  if any(low < 0 or high < 0 for low, high in padding):
    raise ValueError(f"max_pool: padding {padding} must not be negative")
  padded = jnp.pad(x, ((0, 0), *padding, (0, 0)), constant_values=-jnp.inf)
  sizes = [(size - span) // stride + 1
           for size, span, stride in zip(padded.shape[1:-1], window, strides)]
  if any(size < 1 for size in sizes):
    raise ValueError(f"max_pool: window {window} is larger than the padded input "
                     f"{padded.shape[1:-1]}")
  result = None
  for offsets in itertools.product(*(range(span) for span in window)):
    index = tuple(slice(offset, offset + (size - 1) * stride + 1, stride)
                  for offset, size, stride in zip(offsets, sizes, strides))
    part = padded[(slice(None), *index, slice(None))]
    result = part if result is None else jnp.maximum(result, part)
  return result
