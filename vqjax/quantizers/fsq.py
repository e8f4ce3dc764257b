"""Finite scalar quantization (Mentzer et al. 2023, "Finite Scalar Quantization").

Every channel c of z [..., len(levels)] is squashed into L_c values and rounded:

    half_l  = (L - 1) (1 - eps) / 2
    offset  = 0.5 if L is even else 0       even L: the L values are -L/2 .. L/2 - 1
    bounded = tanh(z + atanh(offset / half_l)) half_l - offset
    code    = round_ste(bounded) / (L // 2)  in [-1, 1]

The shift makes bounded(0) = 0 (vector-quantize-pytorch's atanh; the paper's notebook
writes tan, which is close for large L). For L = 2, offset / half_l > 1 has no atanh; the shift is 0 there, so the two values
-1 and 0 meet at z = 0.

The codebook is implicit: the prod(levels) grid points, with no parameters and no
auxiliary losses. Codes and indices convert exactly in both directions. Levels are
Python ints (static under jit). The family's verbs: `quantize`, `indices_to_codes`,
`codebook_metrics`.
"""
from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from vqjax.quantizers import _validation as validation
from vqjax.quantizers.metrics import codebook_metrics as _codebook_metrics

# Keeps tanh's range strictly inside the outermost rounding bins, as in the paper's code.
BOUND_EPS = 1e-3
MAX_CODEBOOK_SIZE = 2**31 - 1  # indices are int32

sg = jax.lax.stop_gradient


class FSQOutput(NamedTuple):
  quantized: jax.Array  # [..., len(levels)], z's dtype, values in [-1, 1]; straight-through
  indices: jax.Array    # [...] int32 in [0, prod(levels))


def check_levels(levels: Sequence[int]) -> tuple[int, ...]:
  """Returns `levels` as a tuple of ints after checking that every level is an int >= 2."""
  if isinstance(levels, int) or not hasattr(levels, "__len__") or len(levels) == 0:
    raise ValueError(
        f"levels is {levels!r}; FSQ takes one level per channel, e.g. levels=(8, 5, 5, 5)")
  checked = []
  for i, level in enumerate(levels):
    if isinstance(level, bool) or int(level) != level:
      raise ValueError(f"levels[{i}] is {level!r}; FSQ levels must be integers, e.g. (8, 5, 5, 5)")
    if int(level) < 2:
      raise ValueError(f"levels[{i}] is {level}; every FSQ level must be at least 2")
    checked.append(int(level))
  size = math.prod(checked)
  if size > MAX_CODEBOOK_SIZE:
    raise ValueError(
        f"levels {tuple(checked)} give {size} codes, more than int32 indices can hold "
        f"({MAX_CODEBOOK_SIZE}); use fewer or smaller levels")
  return tuple(checked)


def codebook_size(levels: Sequence[int]) -> int:
  """Number of codes of the implicit codebook: prod(levels)."""
  return math.prod(check_levels(levels))


def _check_channels(x: jax.Array, levels: tuple[int, ...], name: str) -> None:
  validation.check_vectors(x, name=name)
  if x.shape[-1] != len(levels):
    raise ValueError(
        f"{name} has last dimension {x.shape[-1]} but levels {levels} has {len(levels)} "
        f"entries; project {name} to {len(levels)} channels or give one level per channel")


def _half_width(levels: tuple[int, ...]):
  return jnp.asarray([level // 2 for level in levels], jnp.float32)


def _basis(levels: tuple[int, ...]):
  """Mixed-radix place values: index = sum_c digit_c * prod(levels[:c])."""
  return jnp.asarray([math.prod(levels[:c]) for c in range(len(levels))], jnp.int32)


def bound(z: jax.Array, levels: Sequence[int]) -> jax.Array:
  """Squashes z [..., len(levels)] so that rounding gives L_c values per channel; float32."""
  levels = check_levels(levels)
  _check_channels(z, levels, "z")
  half_l = [(level - 1) * (1.0 - BOUND_EPS) / 2.0 for level in levels]
  offset = [0.5 if level % 2 == 0 else 0.0 for level in levels]
  # L = 2 has offset > half_l and no atanh; shift 0 puts its one boundary at z = 0.
  shift = [math.atanh(o / h) if o < h else 0.0 for o, h in zip(offset, half_l)]
  half_l, offset, shift = (jnp.asarray(x, jnp.float32) for x in (half_l, offset, shift))
  return jnp.tanh(z.astype(jnp.float32) + shift) * half_l - offset


def round_ste(x: jax.Array) -> jax.Array:
  """round(x) forward, identity gradient; written round(x) + (x - sg(x)) so the forward
  value is exactly an integer (x + sg(round(x) - x) can be off by an ulp)."""
  return jnp.round(x) + (x - sg(x))


def codes_to_indices(codes: jax.Array, levels: Sequence[int]) -> jax.Array:
  """Code vectors [..., len(levels)] with values on the FSQ grid -> int32 indices [...]."""
  levels = check_levels(levels)
  _check_channels(codes, levels, "codes")
  half_width = _half_width(levels)
  # Rounding makes the digits exact even for bfloat16 codes such as 1/3.
  digits = jnp.round(sg(codes).astype(jnp.float32) * half_width + half_width).astype(jnp.int32)
  return jnp.sum(digits * _basis(levels), axis=-1)


def indices_to_codes(indices: jax.Array, levels: Sequence[int]) -> jax.Array:
  """int32 indices [...] -> float32 code vectors [..., len(levels)] in [-1, 1]."""
  levels = check_levels(levels)
  validation.check_indices(indices)
  indices = jnp.asarray(indices, jnp.int32)
  digits = (indices[..., None] // _basis(levels)) % jnp.asarray(levels, jnp.int32)
  half_width = _half_width(levels)
  return (digits.astype(jnp.float32) - half_width) / half_width


def codebook(levels: Sequence[int]) -> jax.Array:
  """All prod(levels) codes in index order: float32 [prod(levels), len(levels)]."""
  return indices_to_codes(jnp.arange(codebook_size(levels), dtype=jnp.int32), levels)


def quantize(z: jax.Array, levels: Sequence[int]) -> FSQOutput:
  """Rounds every vector of z [..., len(levels)] to the FSQ grid.

  The gradient to z is that of the bounding tanh (rounding is straight-through). Math is
  float32; `quantized` has z's dtype.
  """
  levels = check_levels(levels)
  _check_channels(z, levels, "z")
  codes = round_ste(bound(z, levels)) / _half_width(levels)
  return FSQOutput(codes.astype(z.dtype), codes_to_indices(codes, levels))


def codebook_metrics(indices: jax.Array, levels: Sequence[int], *,
                     axis_name: Hashable | None = None) -> dict[str, jax.Array]:
  """Codebook usage (perplexity, codes_used_fraction, dead_codes) over the global batch."""
  return _codebook_metrics(indices, codebook_size(levels), axis_name=axis_name)
