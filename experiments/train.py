r"""Trains a VQ-VAE from a config; a restart with the same workdir resumes exactly.

  python -m experiments.train --config=experiments/configs/digits.py --workdir=/tmp/digits
  python -m experiments.train --config=experiments/configs/digits.py:tiny --workdir=/tmp/t \
      --config.train.num_steps=50
"""
from absl import app
from absl import flags
from ml_collections import config_flags

from experiments import cli
from vqjax.runner import tokenizer_task

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and results.")
config_flags.DEFINE_config_file("config", None, "Config file, as path/to/config.py[:arg].",
                                lock_config=True)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  cli.check_no_arguments(argv, "--config=experiments/configs/digits.py --workdir=DIR")
  tokenizer_task.train_tokenizer(FLAGS.config, FLAGS.workdir)


if __name__ == "__main__":
  app.run(main)
