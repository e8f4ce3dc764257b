r"""Trains a tokenizer from a config: a VQ-VAE, VQ-VAE-2 or VQGAN, adversarially where the
config has the adversarial sections (gan, discriminator, lpips); a restart with the same
workdir resumes exactly.

  python -m experiments.train --config=experiments/configs/digits.py --workdir=/tmp/digits
  python -m experiments.train --config=experiments/configs/vqgan_digits.py --workdir=/tmp/vg
  python -m experiments.train --config=experiments/configs/digits.py:tiny --workdir=/tmp/t \
      --config.train.num_steps=50

The console shows progress, the evaluation and where files went; --verbose adds every
library's log lines.
"""
from absl import flags
from ml_collections import config_flags

from experiments import cli

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and results.")
config_flags.DEFINE_config_file("config", None, "Config file, as path/to/config.py[:arg].",
                                lock_config=True)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  cli.check_no_arguments(argv, "--config=experiments/configs/digits.py --workdir=DIR")
  cli.setup_console()
  from vqjax.runner import tokenizer_task  # pylint: disable=import-outside-toplevel
  tokenizer_task.train_tokenizer(FLAGS.config, FLAGS.workdir)


if __name__ == "__main__":
  cli.run(main)
