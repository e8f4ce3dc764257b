"""psum, pmean, pmin and member 0's value over a named axis, which are the identity where
the axis is absent (None) or spans one device.

JAX leaves a one-device psum in the program, and XLA:CPU runs it as an all-reduce that
copies its operand: a pmean over a VQGAN's 17.7M gradient entries took 43.0 ms where the
same program without it took 7.6 ms (one device, two threads of a 2-core AVX2 CPU). The
sums over one device are their operands, so these return them unchanged; over more
devices they are `jax.lax.psum`, `jax.lax.pmean`, `jax.lax.pmin` and `jax.lax.all_gather`.
"""
from __future__ import annotations

from collections.abc import Hashable

import jax


def spans_devices(axis_name: Hashable | None) -> bool:
  """True where axis_name is bound (pmap, vmap, shard_map) to more than one member."""
  return axis_name is not None and jax.lax.axis_size(axis_name) > 1


def psum(x, axis_name: Hashable | None):
  """jax.lax.psum(x, axis_name); x itself where the axis is None or of size one."""
  return jax.lax.psum(x, axis_name) if spans_devices(axis_name) else x


def pmean(x, axis_name: Hashable | None):
  """jax.lax.pmean(x, axis_name); x itself where the axis is None or of size one."""
  return jax.lax.pmean(x, axis_name) if spans_devices(axis_name) else x


def pmin(x, axis_name: Hashable | None):
  """jax.lax.pmin(x, axis_name); x itself where the axis is None or of size one."""
  return jax.lax.pmin(x, axis_name) if spans_devices(axis_name) else x


def from_first(x, axis_name: Hashable | None):
  """Member 0's x on every member of axis_name (an all-gather); x itself where the axis is
  None or of size one."""
  return jax.lax.all_gather(x, axis_name)[0] if spans_devices(axis_name) else x


def batch_norm_axis(axis_name: Hashable | None) -> Hashable | None:
  """The axis_name to give flax's BatchNorm: None where the statistics span one device."""
  return axis_name if spans_devices(axis_name) else None
