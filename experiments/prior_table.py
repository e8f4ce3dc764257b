r"""The prior table: class-conditional priors over one tokenizer's grids, each sampled with
several settings, measured by generation FID (and IS where the Inception weights have a
classifier) of --fid_samples decoded samples against the test split, beside the prior's
test NLL (causal priors: nats per token and bits per image dimension) or masked-token
NLL (MaskGIT), and the images/s of drawing and decoding those samples SAMPLING_BATCH (64)
at a time (the first batch, which compiles, and the Inception pass excluded).

Three priors train over --tokenizer_workdir's grids, in <workdir>/<prior>: the causal
transformer, the MaskGIT prior and the gated PixelCNN (configs by --dataset: mnist's
prior_mnist.py, prior_mnist_maskgit.py, prior_mnist_pixelcnn.py; cifar10's
prior_cifar10.py, prior_cifar10_maskgit.py and prior_cifar10.py with a PixelCNN, sized for
an accelerator; cifar10_cpu's the same at their ':cpu' budget for 2 CPU cores). Each
row then samples one of them with its settings (the ROWS below: guidance scales, MaskGIT
steps) through experiments.evaluate's code, so its samples.png and metrics.json land in
<workdir>/<prior>/evaluations/step_<N>*. Resumable row by row: a prior's run resumes
where it stopped, and a row with <workdir>/rows/<row>.json is read back, not redone. The
table of every finished row so far, in ROWS order whichever command ran it, is printed
after every row and written to <workdir>/table.md.

  python -m experiments.prior_table --dataset=mnist --tokenizer_workdir=workdir/mnist128 \
      --workdir=workdir/mnist128_priors --fid_samples=10000
  python -m experiments.prior_table ... --rows=transformer,transformer_s2,maskgit_t8
"""
from __future__ import annotations

import importlib
import os
from typing import Callable, Iterable

from absl import app, flags, logging
import ml_collections

from experiments import cli, results_table

FLAGS = flags.FLAGS

# row -> (prior, sampling settings): no guidance_scale is plain conditional sampling.
ROWS = {
    "transformer": ("transformer", {}),
    "transformer_s1.5": ("transformer", {"guidance_scale": 1.5}),
    "transformer_s2": ("transformer", {"guidance_scale": 2.0}),
    "transformer_s3": ("transformer", {"guidance_scale": 3.0}),
    "maskgit_t4": ("maskgit", {"maskgit_steps": 4}),
    "maskgit_t8": ("maskgit", {"maskgit_steps": 8}),
    "maskgit_t12": ("maskgit", {"maskgit_steps": 12}),
    "maskgit_t4_s2": ("maskgit", {"maskgit_steps": 4, "guidance_scale": 2.0}),
    "maskgit_t8_s2": ("maskgit", {"maskgit_steps": 8, "guidance_scale": 2.0}),
    "maskgit_t12_s2": ("maskgit", {"maskgit_steps": 12, "guidance_scale": 2.0}),
    "pixelcnn": ("pixelcnn", {}),
    "pixelcnn_s2": ("pixelcnn", {"guidance_scale": 2.0}),
}
# dataset -> prior -> (config module, its argument, a model section replacing the config's)
_CIFAR10_PIXELCNN = dict(  # as the VQ-VAE paper models these grids
    name="pixelcnn", hidden_channels=128, num_layers=12, kernel_size=3, num_classes=10,
    label_dropout_rate=0.1, dtype="float32")
PRIOR_CONFIGS = {
    "mnist": {"transformer": ("prior_mnist", None, None),
              "maskgit": ("prior_mnist_maskgit", None, None),
              "pixelcnn": ("prior_mnist_pixelcnn", None, None)},
    "cifar10": {"transformer": ("prior_cifar10", None, None),
                "maskgit": ("prior_cifar10_maskgit", None, None),
                "pixelcnn": ("prior_cifar10", None, _CIFAR10_PIXELCNN)},
    # The budget of 2 CPU cores (prior_cifar10.py's ':cpu'). The paper's PixelCNN would cost
    # ten times the transformer's step there (about 540M multiply-adds per grid against
    # 50M); this one, 64 channels by 8 layers (enough to see every earlier position of an
    # 8x8 grid), about twice.
    "cifar10_cpu": {"transformer": ("prior_cifar10", "cpu", None),
                    "maskgit": ("prior_cifar10_maskgit", "cpu", None),
                    "pixelcnn": ("prior_cifar10", "cpu", dict(
                        _CIFAR10_PIXELCNN, hidden_channels=64, num_layers=8))},
}
ROWS_DIR = "rows"
TABLE_FILE = "table.md"
SAMPLING_BATCH = 64  # the FID's samples are drawn (and their throughput timed) 64 at a time
COLUMNS = (("fid", "FID", "{:.2f}"), ("inception_score", "IS", "{:.2f}"),
           ("nll", "test NLL nats/token", "{:.3f}"),
           ("bits_per_dim", "test NLL bits/dim", "{:.4f}"), ("fid_samples", "samples", "{:.0f}"),
           ("sampling_images_per_second", f"images/s sampled, batch {SAMPLING_BATCH}",
            "{:.1f}"))


def prior_config(dataset: str, prior: str, tokenizer_workdir: str):
  """The config that trains `prior` over tokenizer_workdir's grids."""
  name, arg, model = PRIOR_CONFIGS[dataset][prior]
  config = importlib.import_module(f"experiments.configs.{name}").get_config(arg)
  if model is not None:
    config.model = ml_collections.ConfigDict(model)
  config.tokenizer_workdir = tokenizer_workdir
  return config


def run_rows(workdir: str, rows: Iterable[str], make_config: Callable, *, fid_samples: int,
             cache_dir: str | None = None, inception=None) -> list[dict]:
  """Trains each row's prior if it has not finished (make_config(prior) -> its config),
  then evaluates the row unless its result is already in workdir/rows; returns these
  rows' results in order. After each row the table of every finished row in workdir/rows
  (these and earlier commands') is printed and written. A SIGTERM during training stops
  the table there."""
  from vqjax.runner import prior_evaluation, prior_task  # pylint: disable=import-outside-toplevel
  results, trained = [], set()
  os.makedirs(os.path.join(workdir, ROWS_DIR), exist_ok=True)
  for row in rows:
    prior, settings = ROWS[row]
    path = row_path(workdir, row)
    finished = results_table.read_json(path)
    if finished is None:
      prior_dir = os.path.join(workdir, prior)
      if prior not in trained:
        if prior_task.train_prior(make_config(prior), prior_dir) is None:
          logging.warning("the %s prior was preempted; run the same command to resume", prior)
          break
        trained.add(prior)
      evaluation = prior_evaluation.evaluate_prior_latest(
          prior_dir, fid=True, num_samples=fid_samples, cache_dir=cache_dir,
          inception=inception, fid_batch_size=SAMPLING_BATCH, **settings)
      finished = row_results(row, evaluation)
      results_table.write_json(path, finished)
    results.append(finished)
    table = results_table.finished_rows(lambda name: row_path(workdir, name), ROWS)
    results_table.write_table(os.path.join(workdir, TABLE_FILE), table_markdown(table))
  return results


def row_path(workdir: str, row: str) -> str:
  return os.path.join(workdir, ROWS_DIR, f"{row}.json")


def row_results(row: str, evaluation) -> dict:
  metrics = evaluation.metrics
  nll = metrics.get("nll_nats_per_token", metrics.get("masked_nll_0.5"))
  prior, settings = ROWS[row]
  return {"row": row, "prior": prior, "settings": settings, "step": evaluation.step,
          "fid": metrics["fid"], "fid_samples": metrics["fid_samples"],
          "inception_score": metrics.get("inception_score"), "nll": nll,
          "bits_per_dim": metrics.get("bits_per_dim"),
          "sampling_images_per_second": metrics.get("sampling_images_per_second"),
          "nll_kind": "exact" if "nll_nats_per_token" in metrics else "masked at ratio 0.5",
          "samples_png": os.path.join(evaluation.directory, "samples.png")}


def describe(result: dict) -> str:
  settings = result["settings"]
  parts = [result["prior"]]
  if "maskgit_steps" in settings:
    parts.append(f"T = {settings['maskgit_steps']}")
  parts.append(f"guidance s = {settings['guidance_scale']}" if "guidance_scale" in settings
               else "no guidance")
  return ", ".join(parts)


def table_markdown(results: list[dict]) -> str:
  rows = []
  for result in results:
    cells = [results_table.format_cell(result.get(name), pattern)
             for name, _, pattern in COLUMNS]
    if result.get("nll_kind", "exact") != "exact" and result.get("nll") is not None:
      cells[2] += " (masked, r = 0.5)"
    rows.append((describe(result), cells))
  return results_table.markdown("prior, sampling", [title for _, title, _ in COLUMNS], rows)


def check_rows(rows) -> None:
  results_table.check_rows(rows, list(ROWS))


def main(argv):
  cli.check_no_arguments(argv, "--tokenizer_workdir=DIR --workdir=DIR")
  check_rows(FLAGS.rows)
  if FLAGS.fid_samples < 2:
    raise app.UsageError(f"--fid_samples={FLAGS.fid_samples}: FID needs at least 2 images")
  cli.setup_console()
  from vqjax.runner import workdir as workdir_lib  # pylint: disable=import-outside-toplevel
  tokenizer_workdir = workdir_lib.absolute_path(FLAGS.tokenizer_workdir)
  run_rows(FLAGS.workdir, FLAGS.rows,
           lambda prior: prior_config(FLAGS.dataset, prior, tokenizer_workdir),
           fid_samples=FLAGS.fid_samples, cache_dir=FLAGS.fid_cache_dir)


def define_flags():
  # Defined only when run as a program, so that tests import this module beside the other
  # entry points without defining the shared flag names twice.
  flags.DEFINE_string("workdir", None, "Where the priors' runs, the rows and the table go.")
  flags.DEFINE_string("tokenizer_workdir", None, "The tokenizer whose grids the priors model.")
  flags.DEFINE_enum("dataset", "mnist", list(PRIOR_CONFIGS), "Which priors' configs.")
  flags.DEFINE_list("rows", list(ROWS), "Rows to run, in order.")
  flags.DEFINE_integer("fid_samples", 10_000, "Samples per row for the generation FID.")
  flags.DEFINE_string("fid_cache_dir", None, "Where split statistics are cached.")
  flags.mark_flags_as_required(["workdir", "tokenizer_workdir"])


if __name__ == "__main__":
  define_flags()
  cli.run(main)
