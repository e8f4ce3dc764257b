r"""Trains a prior over a tokenizer's token grids; a restart with the same workdir resumes
exactly.

  python -m experiments.train_prior --config=experiments/configs/prior_digits.py \
      --config.tokenizer_workdir=/tmp/digits --workdir=/tmp/digits_prior

config.model.name picks the prior: 'transformer', 'pixelcnn' or 'maskgit' (a MaskGIT
prior, e.g. prior_mnist_maskgit.py, reports masked-token NLL and accuracy instead of the
exact NLL). A VQ-VAE-2 tokenizer takes two priors, config.level 'top' and 'bottom' (the
bottom one conditioned on the top grid): prior_vqvae2_top.py and prior_vqvae2_bottom.py.
--verbose adds every library's log lines to the console.
"""
from absl import flags
from ml_collections import config_flags

from experiments import cli

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for the prior's checkpoints, logs, results.")
config_flags.DEFINE_config_file("config", None, "Config file, as path/to/config.py[:arg].",
                                lock_config=True)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  cli.check_no_arguments(argv, "--config=experiments/configs/prior_digits.py "
                         "--config.tokenizer_workdir=TOKENIZER_DIR --workdir=DIR")
  cli.setup_console()
  from vqjax.runner import prior_task  # pylint: disable=import-outside-toplevel
  prior_task.train_prior(FLAGS.config, FLAGS.workdir)


if __name__ == "__main__":
  cli.run(main)
