"""Keeping XLA:CPU's step buffers mapped between steps (glibc's malloc settings).

XLA:CPU allocates a program's temporary buffers as one block on every run, with
posix_memalign from one of its worker threads: 422 MB for the 64x64 VQGAN generator step
of experiments.bench_vqgan --vs_taming. glibc serves a block that large in a thread's
arena only by mmap and unmaps it when it is freed, so every step faults in all its pages
again: ~103,000 minor page faults and ~0.18 s of system time per generator step on one
core, 11% of the step. With one arena, no mmap and no trimming of the heap's top, the
block stays mapped and a step faults in nothing: generator step 1.593 -> 1.441 s, whole
GAN step 2.112 -> 1.969 s (one core, interleaved processes).

glibc reads these variables once, when a process starts, so they belong in the command's
environment (RETAINED_MALLOC; the benchmarks set them for their worker processes):

    MALLOC_ARENA_MAX=1 MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1099511627776 \\
        python -m experiments.train --config=...

The cost: the process's resident memory stays at its peak instead of shrinking after a
step. Other allocators (jemalloc, tcmalloc via LD_PRELOAD) keep freed blocks mapped too.
"""
from __future__ import annotations

from typing import Mapping

RETAINED_MALLOC = {
    "MALLOC_ARENA_MAX": "1",                  # every thread allocates from the main heap,
    "MALLOC_MMAP_MAX_": "0",                  # which grows without mmap for large blocks
    "MALLOC_TRIM_THRESHOLD_": str(2 ** 40),   # and is never trimmed back to the system
}


def with_retained_malloc(environment: Mapping[str, str]) -> dict[str, str]:
  """environment plus RETAINED_MALLOC; a variable environment sets already keeps its value."""
  return {**RETAINED_MALLOC, **environment}


def command_prefix() -> str:
  """RETAINED_MALLOC as the `NAME=value ...` that goes before a shell command."""
  return " ".join(f"{name}={value}" for name, value in RETAINED_MALLOC.items())


def hint(environment: Mapping[str, str], platform: str) -> str | None:
  """On the CPU, where this process's environment lacks a RETAINED_MALLOC variable, the
  advice to set them (None otherwise)."""
  missing = [name for name in RETAINED_MALLOC if name not in environment]
  if platform != "cpu" or not missing:
    return None
  return (f"{', '.join(missing)} not set: XLA:CPU maps and unmaps its step buffers on "
          f"every step (10% of a VQGAN step on one core); run the command as "
          f"`{command_prefix()} python -m ...` to keep them mapped "
          "(vqjax/runner/host_allocator.py)")
