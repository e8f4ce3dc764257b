r"""The main job: the whole pipeline on the built-in digits (scikit-learn's bundled 8x8
handwritten digits; no network needed).

  1. trains the digits tokenizer (a VQ-VAE: 8x8 images -> 4x4 grids of 128 codes),
  2. encodes the digits into token grids (cached with the tokenizer's checkpoint step),
  3. trains a class-conditional transformer prior over the grids,
  4. samples new grids and decodes them with the tokenizer,

and writes reconstructions.png, samples.png and metrics.json into the work directory
(the runs themselves in its tokenizer/ and prior/ folders).

  python -m experiments.quickstart --workdir=workdir/quickstart

About two minutes on 2 CPU cores. Running it again with the same workdir resumes from the
last checkpoints (and returns quickly when both runs are done).
"""
from __future__ import annotations

import json
import os
import shutil

from absl import app
from absl import flags

from experiments import cli
from experiments.configs import digits, prior_digits
from vqjax.runner import prior_task, tokenizer_task

FLAGS = flags.FLAGS

OUTPUTS = ("reconstructions.png", "samples.png", "metrics.json")


def run(workdir: str, config_arg: str | None = None) -> dict:
  """Runs the pipeline in workdir; returns {'tokenizer': metrics, 'prior': metrics}."""
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
  metrics = run(FLAGS.workdir, FLAGS.config_arg)
  print(json.dumps(metrics, indent=2))
  workdir = os.path.abspath(FLAGS.workdir)
  print("outputs:", ", ".join(os.path.join(workdir, name) for name in OUTPUTS))


def define_flags():
  # Defined only when run as a program, so that importing this module (in tests, next to
  # the other entry points) does not define the shared flag names twice.
  flags.DEFINE_string("workdir", "workdir/quickstart", "Where the outputs go.")
  flags.DEFINE_string("config_arg", None, "get_config's argument, e.g. 'tiny' for a smoke run.")


if __name__ == "__main__":
  define_flags()
  app.run(main)
