"""Benchmark: the train step of each quantizer-table row, every row in one process held to
the same threads, the rows interleaved (A B C ... A B C ...) after warm-up, so that their
steps/s compare (the rates a training run logs do not: rows train hours apart, on a
machine shared to a different degree each time).

    python -m experiments.bench_quantizer_table                   # every row, one thread
    python -m experiments.bench_quantizer_table --rows=vq,fsq --threads=1,2 --repetitions=9
    python -m experiments.bench_quantizer_table --tiny --rows=vq,fsq --repetitions=1  # smoke

Each row is cifar10_sonnet.py's tokenizer with that row's quantizer (the table's model:
32x32x3 images, batch 32, an 8x8 grid; --tiny: its test-sized shrink), one full train step
(forward, backward, Adam, the quantizer's own updates), on fixed random images: a step's
time does not depend on the pixels, so no dataset is read. steps/s is 1 / the fastest of
--repetitions steps. The last line is `summary: threads=N <row>=<steps/s> ...` (the first
thread count); quantizer_table.py runs this for its "train steps/s" column.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics

from experiments import benchmarking
from experiments.configs import cifar10_sonnet

WARMUP_STEPS = 2
CIFAR10_SHAPE = (32, 32, 3)


def row_config(row: str, *, tiny: bool):
  return cifar10_sonnet.get_config(f"tiny={str(tiny).lower()},quantizer={row}")


def row_step(row: str, *, tiny: bool):
  """() -> None: one train step of the row's tokenizer on fixed random images, blocked on."""
  config = row_config(row, tiny=tiny)
  return tokenizer_step(config, random_images(config.data.batch_size))[0]


def random_images(batch_size: int):
  """Fixed uniform images in [-1, 1], [batch_size, 32, 32, 3] float32."""
  import numpy as np
  return np.random.default_rng(0).uniform(-1, 1, (batch_size, *CIFAR10_SHAPE)).astype(
      np.float32)


def tokenizer_step(config, images):
  """(run, parameters): run() is one vqjax train step of the config's tokenizer on `images`
  (split over the local devices), blocked on, the state donated by each step and carried
  to the next; parameters is the model's parameter count."""
  import jax
  from vqjax import data
  from vqjax.runner import experiment, tokenizer_task
  from vqjax.train import parallel

  info = data.DatasetInfo(name="random 32x32x3 images", image_shape=CIFAR10_SHAPE,
                          channels=3, num_classes=10, num_examples={})
  task = tokenizer_task.tokenizer_task(experiment.prepare(config, info=info))
  devices = jax.local_device_count()
  batch = {"image": jax.device_put(images.reshape(devices, -1, *CIFAR10_SHAPE),
                                   parallel.split_sharding())}
  step, holder = task.make_train_step(), [task.init_state()]
  parameters = sum(leaf.size for leaf in jax.tree.leaves(holder[0].params))

  def run():
    holder[0], metrics = step(holder[0], batch)
    jax.block_until_ready((holder[0], metrics))
  return run, parameters


def worker(threads: int, *, rows: list[str], tiny: bool, repetitions: int) -> dict:
  """{'threads': threads, 'times': {row: [s...]}}: the rows' steps interleaved."""
  steps = {row: row_step(row, tiny=tiny) for row in rows}
  times = benchmarking.interleaved_times(steps, repetitions, warmup=WARMUP_STEPS)
  return {"threads": threads, "tiny": tiny, "times": times}


def steps_per_second(times: list[float]) -> float:
  return 1.0 / min(times)


def table(results: dict[int, dict]) -> str:
  rows = [(str(threads), row, f"{min(times):.4f}", f"{statistics.median(times):.4f}",
           str(len(times)), f"{steps_per_second(times):.2f}")
          for threads, result in sorted(results.items())
          for row, times in result["times"].items()]
  return benchmarking.format_table(
      ("threads", "row", "min s", "median s", "steps", "steps/s"), rows)


def summary_line(results: dict[int, dict]) -> str:
  threads = min(results)
  return f"summary: threads={threads} " + " ".join(
      f"{row}={steps_per_second(times):.3f}"
      for row, times in results[threads]["times"].items())


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--rows", default=",".join(cifar10_sonnet.QUANTIZER_ROWS),
                      help="Comma-separated rows of cifar10_sonnet.QUANTIZER_ROWS.")
  benchmarking.add_thread_arguments(
      parser, threads="1", threads_help="Thread counts, one worker process each, e.g. 1,2.",
      repetitions=7,
      repetitions_help="Timed steps of each row, interleaved, after the warm-up.")
  parser.add_argument("--tiny", action="store_true", help="The test-sized model.")
  args = parser.parse_args(argv)
  args.rows = check_rows(args.rows)
  return args


def check_rows(rows: str) -> list[str]:
  names = [row for row in rows.split(",") if row]
  unknown = [row for row in names if row not in cifar10_sonnet.QUANTIZER_ROWS]
  if unknown or not names:
    raise SystemExit(f"--rows={rows}: unknown or no rows {unknown}; choose from "
                     f"{','.join(cifar10_sonnet.QUANTIZER_ROWS)}")
  return names


def main(argv=None) -> dict[int, dict]:
  args = parse_args(argv)
  return benchmarking.compare_across_threads(
      args, module="experiments.bench_quantizer_table",
      worker_arguments=[f"--rows={','.join(args.rows)}", f"--repetitions={args.repetitions}"]
      + ["--tiny"] * args.tiny,
      work=lambda threads: worker(threads, rows=args.rows, tiny=args.tiny,
                                  repetitions=args.repetitions),
      header=f"quantizer-table rows' train steps on the CPU ({os.cpu_count()} cores), "
      f"cifar10_sonnet{':tiny' if args.tiny else ''} batch 32, threads {args.threads}, "
      f"{args.repetitions} interleaved steps each after {WARMUP_STEPS} warm-up",
      describe=lambda result: f"seconds per step {json.dumps(result['times'])}",
      report=(table, summary_line))


if __name__ == "__main__":
  main()
