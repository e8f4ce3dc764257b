"""Splitting a convolution over its batch so that XLA:CPU runs it on more than one thread.

XLA:CPU's convolution kernel (YNNPACK, jaxlib 0.10) divides one convolution among its
threads only by blocks of 64 output channels: a convolution to 64 or fewer channels runs on
one thread however many the CPU has (3x3, 4 x 64x64x64 to 64: 14.1 ms on one thread, 14.3 ms
on two), and so does its kernel gradient. XLA's runtime does run independent operations at
the same time, so the same convolution written as one convolution per part of the batch
keeps every thread busy (the same layer with its two gradients: 62 ms -> 37 ms on two
threads). The parts are concatenated; the kernel gradient becomes a sum over the parts,
equal up to float rounding.

This is decided when a function is traced: on the CPU backend, from the threads this
process may run on (XLA sizes its pool from them), and only where the convolution's output
blocks are fewer than the threads. So a run resumed on a machine with another number of
cores computes the same steps up to float rounding, not bit for bit.
"""
from __future__ import annotations

import math
import os

import jax

OUTPUT_CHANNEL_BLOCK = 64  # YNNPACK's unit of work among threads, in output channels


def host_threads() -> int:
  """The CPUs this process may run on, which is the size of XLA:CPU's thread pool."""
  if hasattr(os, "sched_getaffinity"):
    return len(os.sched_getaffinity(0))
  return os.cpu_count() or 1


def batch_parts(batch: int, output_channels: int, threads: int) -> int:
  """How many parts to split a batch into so that `threads` threads each get work: 1 where
  the output channels already give every thread a block, else enough parts that parts x
  blocks covers the threads, at most one example per part."""
  blocks = math.ceil(output_channels / OUTPUT_CHANNEL_BLOCK)
  if threads <= 1 or blocks >= threads:
    return 1
  return max(1, min(batch, math.ceil(threads / blocks)))


def parts_here(batch: int, output_channels: int) -> int:
  """batch_parts on this process's backend: 1 off the CPU."""
  if jax.default_backend() != "cpu":
    return 1
  return batch_parts(batch, output_channels, host_threads())


def bounds(batch: int, parts: int) -> list[tuple[int, int]]:
  """[start, stop) of each part, sizes differing by at most one, larger first."""
  size, extra = divmod(batch, parts)
  edges = [0]
  for index in range(parts):
    edges.append(edges[-1] + size + (index < extra))
  return list(zip(edges[:-1], edges[1:]))
