r"""The quantizer table: one tokenizer (the Sonnet-sized VQ-VAE of cifar10_sonnet.py, 8x8
grid, 10,000 steps, the same seed), one row per quantizer at about 2^10 codes, measured on
the test split: normalized MSE, PSNR, LPIPS, rFID, codes used, perplexity and train steps/s.

Resumable row by row: each row trains in <workdir>/<row> (a training run resumes where it
stopped) and, once evaluated, leaves <workdir>/<row>/table_row.json, which later runs read
instead of redoing the row. After every row the table so far is printed and written to
<workdir>/table.md. Rows are those of cifar10_sonnet.QUANTIZER_ROWS, in order.

Once every row has finished, the rows' train steps are timed together in one process held
to one thread, interleaved (experiments.bench_quantizer_table), into
<workdir>/step_times.json, reused while it holds the same rows: the "train steps/s" column.

  python -m experiments.quantizer_table --workdir=workdir/quantizer_table
  python -m experiments.quantizer_table --workdir=DIR --rows=vq,fsq --fid_images=2000
  python -m experiments.quantizer_table --workdir=DIR --dataset=cifar10   # TFDS's cifar10

--dataset=jpeg_copy (the default) reads ../shared/tfds's cifar10_jpeg, CIFAR-10 decoded
from JPEG quality-75 copies: report its figures as "CIFAR-10 (JPEG copy)". Each row's
table_row.json also keeps the median of the rates its training logged
(train_steps_per_second), which compares only between rows trained on an equally loaded
machine; the table's column is the interleaved timing.
"""
from __future__ import annotations

import os
from typing import Callable, Iterable

from absl import flags, logging

from experiments import benchmarking, cli, results_table
from experiments.configs import cifar10_sonnet

FLAGS = flags.FLAGS

ROW_FILE = "table_row.json"
TABLE_FILE = "table.md"
STEP_TIMES_FILE = "step_times.json"
STEP_TIME_THREADS = 1
COLUMNS = (("normalized_mse", "test MSE / variance", "{:.4f}"), ("psnr", "PSNR dB", "{:.2f}"),
           ("lpips", "LPIPS", "{:.4f}"), ("rfid", "rFID", "{:.2f}"),
           ("codes_used", "codes used", "{:.0f}"), ("perplexity", "perplexity", "{:.1f}"))
STEPS_PER_SECOND = ("train steps/s", "{:.2f}")


def run_rows(workdir: str, rows: Iterable[str], make_config: Callable, *,
             evaluate_args: dict) -> list[dict]:
  """Trains and evaluates each row not yet in the table (make_config(row) -> its config);
  returns these rows' results, in the order of rows. After each row the table of every
  finished row in workdir (these and earlier commands') is printed and written. A run
  preempted by SIGTERM stops the table there (the rows so far are kept)."""
  from vqjax.runner import build, tokenizer_task  # pylint: disable=import-outside-toplevel
  results = []
  for row in rows:
    row_dir = os.path.join(workdir, row)
    finished = results_table.read_json(row_path(workdir, row))
    if finished is None:
      config = make_config(row)
      if tokenizer_task.train_tokenizer(config, row_dir) is None:
        logging.warning("row %s was preempted; run the same command again to resume it", row)
        break
      metrics = tokenizer_task.evaluate_latest(row_dir, **evaluate_args).metrics
      finished = row_results(row, metrics, train_steps_per_second(row_dir),
                             num_codes=build.build_quantizer(config.model.quantizer).num_codes)
      results_table.write_json(row_path(workdir, row), finished)
    results.append(finished)
    results_table.write_table(os.path.join(workdir, TABLE_FILE),
                              table_markdown(every_finished_row(workdir)))
  return results


def row_path(workdir: str, row: str) -> str:
  return os.path.join(workdir, row, ROW_FILE)


def every_finished_row(workdir: str) -> list[dict]:
  """The finished rows of workdir, whichever command ran them, in QUANTIZER_ROWS order."""
  return results_table.finished_rows(lambda row: row_path(workdir, row),
                                     cifar10_sonnet.QUANTIZER_ROWS)


def row_results(row: str, metrics: dict, steps_per_second: float | None, *,
                num_codes: int) -> dict:
  """The table's fields of one row from its evaluation's metrics: codes used (of num_codes,
  the codes one index can take) and perplexity per level for a residual quantizer."""
  def levels(name):
    if name in metrics:
      return [metrics[name]]
    return [metrics[key] for key in sorted(metrics) if key.startswith(name + "/")]

  fractions = levels("codes_used_fraction")
  return {
      "row": row, "step": metrics["step"], "normalized_mse": metrics["normalized_mse"],
      "psnr": metrics["psnr"], "lpips": metrics.get("lpips"), "rfid": metrics.get("rfid"),
      "rfid_images": metrics.get("rfid_images"),
      "codes_used": [round(f * num_codes) for f in fractions], "num_codes": num_codes,
      "codes_used_fraction": fractions, "perplexity": levels("perplexity"),
      "train_steps_per_second": steps_per_second}


def train_steps_per_second(row_dir: str) -> float | None:
  """The median train/steps_per_second the loop wrote to TensorBoard (None: none logged)."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=import-outside-toplevel
  rates = []
  for root, _, files in os.walk(os.path.join(row_dir, "tensorboard")):
    if not any(".tfevents." in name for name in files):
      continue
    events = event_accumulator.EventAccumulator(root, size_guidance={"tensors": 0})
    events.Reload()
    if "train/steps_per_second" in events.Tags().get("tensors", []):
      rates += [float(np.asarray(tensor_value(e))) for e in
                events.Tensors("train/steps_per_second")]
  return float(np.median(rates)) if rates else None


def tensor_value(event):
  from tensorboard.util import tensor_util  # pylint: disable=import-outside-toplevel
  return tensor_util.make_ndarray(event.tensor_proto)


def table_markdown(results: list[dict], step_times: dict | None = None) -> str:
  """The table of the finished rows; train steps/s from step_times (time_rows) where it
  has the row, '-' before the rows are timed."""
  times = (step_times or {}).get("times", {})
  title, pattern = STEPS_PER_SECOND
  rows = [(cifar10_sonnet.QUANTIZER_ROWS.get(result["row"], {}).get("label", result["row"]),
           [results_table.format_cell(result.get(name), pattern)
            for name, _, pattern in COLUMNS]
           + [results_table.format_cell(1.0 / min(times[result["row"]])
                                        if result["row"] in times else None, pattern)])
          for result in results]
  table = results_table.markdown("quantizer", [title for _, title, _ in COLUMNS] + [title],
                                 rows)
  if times:
    table += (f"\ntrain steps/s: 1 / the fastest of {step_times['repetitions']} steps, the "
              f"rows interleaved in one process held to {step_times['threads']} thread(s) "
              "(experiments.bench_quantizer_table), batch 32.\n")
  return table


def time_rows(workdir: str, rows: list[str], *, repetitions: int,
              run_worker: Callable = benchmarking.run_worker) -> dict:
  """The rows' train steps timed together (bench_quantizer_table in a worker process held
  to STEP_TIME_THREADS), kept in workdir/step_times.json and reused while it has exactly
  these rows and repetitions."""
  path = os.path.join(workdir, STEP_TIMES_FILE)
  kept = results_table.read_json(path)
  if (kept and sorted(kept["times"]) == sorted(rows)
      and kept["repetitions"] == repetitions):
    return kept
  logging.info("timing the train steps of rows %s, interleaved, one thread", rows)
  result = run_worker("experiments.bench_quantizer_table", STEP_TIME_THREADS,
                      [f"--rows={','.join(rows)}", f"--repetitions={repetitions}"])
  step_times = {"threads": STEP_TIME_THREADS, "repetitions": repetitions,
                "times": result["times"]}
  results_table.write_json(path, step_times)
  return step_times


def check_rows(rows) -> None:
  results_table.check_rows(rows, list(cifar10_sonnet.QUANTIZER_ROWS))


def main(argv):
  cli.check_no_arguments(argv, "--workdir=DIR")
  check_rows(FLAGS.rows)
  cli.setup_console()
  os.makedirs(FLAGS.workdir, exist_ok=True)
  jpeg_copy = str(FLAGS.dataset == "jpeg_copy").lower()
  results = run_rows(
      FLAGS.workdir, FLAGS.rows,
      lambda row: cifar10_sonnet.get_config(f"jpeg_copy={jpeg_copy},quantizer={row}"),
      evaluate_args=dict(lpips=True, fid=FLAGS.fid, fid_images=FLAGS.fid_images,
                         fid_cache_dir=FLAGS.fid_cache_dir))
  if FLAGS.step_time_repetitions and len(results) == len(FLAGS.rows):
    step_times = time_rows(FLAGS.workdir, FLAGS.rows,
                           repetitions=FLAGS.step_time_repetitions)
    results_table.write_table(os.path.join(FLAGS.workdir, TABLE_FILE),
                              table_markdown(every_finished_row(FLAGS.workdir), step_times))


def define_flags():
  # Defined only when run as a program, so that tests import this module beside the other
  # entry points without defining the shared flag names twice.
  flags.DEFINE_string("workdir", None, "Where the rows' runs and the table go.")
  flags.DEFINE_list("rows", list(cifar10_sonnet.QUANTIZER_ROWS), "Rows to run, in order.")
  flags.DEFINE_enum("dataset", "jpeg_copy", ["jpeg_copy", "cifar10"],
                    "jpeg_copy: ../shared/tfds's cifar10_jpeg; cifar10: TFDS's CIFAR-10.")
  flags.DEFINE_integer("fid_images", None, "rFID over the first N test images (default: all "
                       "10,000).")
  flags.DEFINE_bool("fid", True, "Measure rFID (two Inception passes the first time, one "
                    "per row after: the test split's statistics are cached).")
  flags.DEFINE_string("fid_cache_dir", None, "Where split statistics are cached.")
  flags.DEFINE_integer("step_time_repetitions", 7, "Timed train steps of each row once "
                       "every row has finished (0: no timing).", lower_bound=0)
  flags.mark_flag_as_required("workdir")


if __name__ == "__main__":
  define_flags()
  cli.run(main)
