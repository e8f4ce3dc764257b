r"""The main job: the whole pipeline on the built-in digits (scikit-learn's bundled 8x8
handwritten digits; no network needed).

  1. trains the digits tokenizer (a VQ-VAE: 8x8 images -> 4x4 grids of 128 codes),
  2. encodes the digits into token grids (cached with the tokenizer's checkpoint step),
  3. trains a class-conditional transformer prior over the grids,
  4. samples new grids and decodes them with the tokenizer,

and writes reconstructions.png, samples.png and metrics.json into the work directory
(the runs themselves in its tokenizer/ and prior/ folders, which experiments.evaluate
and experiments.sample take as their --workdir; it prints those commands at the end).

  python -m experiments.quickstart --workdir=workdir/quickstart

About two minutes on 2 CPU cores. Running it again with the same workdir resumes from the
last checkpoints (and returns quickly when both runs are done). The digits are prepared
once into TFDS's data directory, ~/tensorflow_datasets (set TFDS_DATA_DIR for another).
--verbose adds every library's log lines to the console.
"""
from __future__ import annotations

import json
import os
import shutil

from absl import flags

from experiments import cli
from experiments.configs import digits, prior_digits

FLAGS = flags.FLAGS

OUTPUTS = ("reconstructions.png", "samples.png", "metrics.json")


def run(workdir: str, config_arg: str | None = None) -> dict:
  """Runs the pipeline in workdir; returns {'tokenizer': metrics, 'prior': metrics}."""
  # Imported here, so that --help answers at once.
  from vqjax.runner import prior_task, tokenizer_task  # pylint: disable=import-outside-toplevel
  workdir = os.path.abspath(workdir)
  tokenizer_dir, prior_dir = os.path.join(workdir, "tokenizer"), os.path.join(workdir, "prior")
  tokenizer_metrics = tokenizer_task.train_tokenizer(digits.get_config(config_arg), tokenizer_dir)
  if tokenizer_metrics is None:
    raise SystemExit("preempted: a checkpoint was saved; run the same command to resume")
  prior_config = prior_digits.get_config(config_arg)
  prior_config.tokenizer_workdir = tokenizer_dir
  prior_metrics = prior_task.train_prior(prior_config, prior_dir)
  if prior_metrics is None:
    raise SystemExit("preempted: a checkpoint was saved; run the same command to resume")
  shutil.copyfile(os.path.join(tokenizer_dir, "reconstructions.png"),
                  os.path.join(workdir, "reconstructions.png"))
  shutil.copyfile(os.path.join(prior_dir, "samples.png"), os.path.join(workdir, "samples.png"))
  metrics = {"tokenizer": tokenizer_metrics, "prior": prior_metrics}
  with open(os.path.join(workdir, "metrics.json"), "w") as file:
    json.dump(metrics, file, indent=2)
  return metrics


def main(argv):
  cli.check_no_arguments(argv, "--workdir=workdir/quickstart")
  cli.setup_console()
  metrics = run(FLAGS.workdir, FLAGS.config_arg)
  print(summary(metrics, FLAGS.workdir))


def summary(metrics: dict, workdir: str) -> str:
  """The closing lines: the headline metrics, the outputs and the commands that go on
  from them, with the runs' folders."""
  workdir = os.path.abspath(workdir)
  tokenizer, prior = metrics["tokenizer"], metrics["prior"]
  return "\n".join([
      f"tokenizer: normalized MSE {tokenizer['normalized_mse']:.4f}, PSNR "
      f"{tokenizer['psnr']:.1f} dB, codes used {tokenizer['codes_used_fraction']:.0%}, "
      f"perplexity {tokenizer['perplexity']:.1f}",
      f"prior: test NLL {prior['nll_nats_per_token']:.3f} nats per token, "
      f"{prior['bits_per_dim']:.3f} bits per dimension",
      "outputs (all metrics in metrics.json):",
      *(f"  {os.path.join(workdir, name)}" for name in OUTPUTS),
      "next:",
      f"  python -m experiments.evaluate --workdir={os.path.join(workdir, 'tokenizer')}",
      f"  python -m experiments.sample --workdir={os.path.join(workdir, 'prior')} --label=3",
      f"  tensorboard --logdir={workdir}",
  ])


def define_flags():
  # Defined only when run as a program, so that importing this module (in tests, next to
  # the other entry points) does not define the shared flag names twice.
  flags.DEFINE_string("workdir", "workdir/quickstart", "Where the outputs go.")
  flags.DEFINE_string("config_arg", None, "get_config's argument, e.g. 'tiny' for a smoke run.")


if __name__ == "__main__":
  define_flags()
  cli.run(main)
