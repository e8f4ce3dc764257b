"""What every benchmark shares: timing a step, printing a right-aligned table, and running
a worker process held to a number of threads (for comparisons against a peer framework,
both frameworks in the same process, each limited to the same threads)."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Callable, Sequence

RESULT_PREFIX = "worker-result: "


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


# XLA flags a worker sets itself: its thread pool, and its devices (the host's CPU as one).
_WORKER_OWNED_XLA_FLAGS = ("--xla_cpu_multi_thread_eigen", "intra_op_parallelism_threads",
                           "--xla_force_host_platform_device_count")


def worker_environment(threads: int) -> dict:
  """The environment of a worker held to `threads`: XLA's and OpenMP's pools sized, and
  glibc's malloc set to keep freed blocks mapped (host_allocator.RETAINED_MALLOC, for both
  frameworks of a comparison alike) unless this process's environment says otherwise.
  Other XLA flags of this process are kept (the tests' unoptimized compilation, a user's
  own)."""
  # Imported here: vqjax's package imports jax, which the benchmarks' --help must not load.
  from vqjax.runner import host_allocator
  inherited = [flag for flag in os.environ.get("XLA_FLAGS", "").split()
               if not flag.startswith(_WORKER_OWNED_XLA_FLAGS)]
  flags = inherited + [f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'}",
                       f"intra_op_parallelism_threads={threads}"]
  return {**host_allocator.with_retained_malloc(os.environ), "XLA_FLAGS": " ".join(flags),
          "JAX_PLATFORMS": "cpu", "OMP_NUM_THREADS": str(threads), "TF_CPP_MIN_LOG_LEVEL": "2"}


def hold_to_threads(threads: int) -> None:
  """This process on `threads` of the CPUs it may use (XLA sizes its pool from them)."""
  cpus = sorted(os.sched_getaffinity(0))
  os.sched_setaffinity(0, cpus[:threads])


def thread_counts(threads: str, repetitions: int) -> list[int]:
  """The thread counts of a comparison's --threads ('1,2'), checked with its repetitions."""
  counts = [int(count) for count in threads.split(",")]
  if repetitions < 1 or any(count < 1 for count in counts):
    raise ValueError(f"repetitions {repetitions} and threads {threads} must be >= 1, e.g. "
                     "--repetitions=5 --threads=1,2")
  return counts


def run_worker(module: str, threads: int, arguments: Sequence[str]) -> dict:
  """Runs `python -m module --worker_threads=threads *arguments` held to threads and
  returns the JSON its print_result printed last."""
  command = [sys.executable, "-m", module, f"--worker_threads={threads}", *arguments]
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  process = subprocess.run(command, cwd=root, env=worker_environment(threads),
                           capture_output=True, text=True)
  results = [line[len(RESULT_PREFIX):] for line in process.stdout.splitlines()
             if line.startswith(RESULT_PREFIX)]
  if process.returncode or not results:
    raise RuntimeError(f"the {threads}-thread worker of {module} failed "
                       f"({process.returncode}):\n{process.stderr[-3000:]}")
  return json.loads(results[-1])


def print_result(result) -> None:
  """A worker's last word: its result as one JSON line that run_worker reads."""
  print(RESULT_PREFIX + json.dumps(result), flush=True)


def add_thread_arguments(parser: argparse.ArgumentParser, *, threads: str,
                         threads_help: str, repetitions: int, repetitions_help: str) -> None:
  """The arguments compare_across_threads reads: --threads (comma-separated counts, one
  worker process each), --repetitions, and the hidden --worker_threads that marks a worker."""
  parser.add_argument("--threads", default=threads, help=threads_help)
  parser.add_argument("--repetitions", type=int, default=repetitions, help=repetitions_help)
  parser.add_argument("--worker_threads", type=int, default=0, help=argparse.SUPPRESS)


def compare_across_threads(args, *, module: str, worker_arguments: Sequence[str],
                           work: Callable[[int], dict], header: str,
                           describe: Callable[[dict], str],
                           report: Sequence[Callable[[dict], str]]) -> dict[int, dict]:
  """{threads: result} of a peer comparison (args: its --threads, --repetitions and the
  hidden --worker_threads). As a worker (--worker_threads=N), held to N threads: work(N),
  printed for the parent. Otherwise prints header, then runs `python -m module
  --worker_threads=N *worker_arguments` for each thread count, printing describe(result),
  and last each of report(results) (its table, its summary line)."""
  if args.worker_threads:
    hold_to_threads(args.worker_threads)
    result = work(args.worker_threads)
    print_result(result)
    return {args.worker_threads: result}
  counts = thread_counts(args.threads, args.repetitions)
  print(header, flush=True)
  results = {}
  for threads in counts:
    results[threads] = run_worker(module, threads, worker_arguments)
    print(f"{threads} thread(s): {describe(results[threads])}", flush=True)
  for lines in report:
    print(lines(results))
  return results


def interleaved_times(steps: dict[str, Callable[[], None]], repetitions: int,
                      warmup: int = 2) -> dict[str, list[float]]:
  """{name: [seconds...]}: each step warmed up, then all run in turn (A B A B ...)
  `repetitions` times; each step must block until its results are ready."""
  for step in steps.values():
    for _ in range(warmup):
      step()
  times = {name: [] for name in steps}
  for _ in range(repetitions):
    for name, step in steps.items():
      start = time.perf_counter()
      step()
      times[name].append(time.perf_counter() - start)
  return times
