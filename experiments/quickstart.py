r"""The main job: trains the digits tokenizer (a VQ-VAE on scikit-learn's bundled 8x8
handwritten digits, no network needed), evaluates it on the test split and writes
reconstructions.png, codebook_usage.png and metrics.json into the work directory.

  python -m experiments.quickstart --workdir=workdir/quickstart

About a minute and a half on 2 CPU cores. Running it again with the same workdir resumes
from the last checkpoint (and returns at once when training is done).
"""
from __future__ import annotations

import json
import os

from absl import app
from absl import flags

from experiments.configs import digits
from vqjax.train import loop

FLAGS = flags.FLAGS

OUTPUTS = ("reconstructions.png", "codebook_usage.png", "metrics.json")


def run(workdir: str, config_arg: str | None = None) -> dict:
  """Trains and evaluates the digits tokenizer in workdir; returns the final metrics."""
  metrics = loop.train_and_evaluate(digits.get_config(config_arg), workdir)
  if metrics is None:
    raise SystemExit("preempted: a checkpoint was saved; run the same command to resume")
  return metrics


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
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
