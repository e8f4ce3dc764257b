"""What every benchmark shares: timing a step, and printing a right-aligned table."""
from __future__ import annotations

import time
from typing import Callable, Sequence


def best_time(run_step: Callable[[], None], repeats: int, warmup: int = 2) -> float:
  """Seconds of the fastest of `repeats` calls of run_step, after `warmup` untimed calls.

  run_step must block until its results are ready (block_until_ready for JAX). On a
  shared machine the fastest call is the one least disturbed by other processes.
  """
  for _ in range(warmup):
    run_step()
  times = []
  for _ in range(max(1, repeats)):
    start = time.perf_counter()
    run_step()
    times.append(time.perf_counter() - start)
  return min(times)


def format_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
  """A header and rows of strings, each column right-aligned to its widest cell."""
  rows = [tuple(columns)] + [tuple(row) for row in rows]
  widths = [max(len(row[column]) for row in rows) for column in range(len(columns))]
  return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(row, widths))
                   for row in rows)
