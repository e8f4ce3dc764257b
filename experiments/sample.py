r"""Samples images from a trained prior: token grids drawn by the compiled sampler, decoded
by the prior's tokenizer, written as a PNG grid to a new <workdir>/samples_<UTC time>.png
(never over the training run's samples.png or an earlier sample; --output names the file).
It changes nothing else in the workdirs: a damaged checkpoint is skipped, never moved.

  python -m experiments.sample --workdir=/tmp/digits_prior --num_samples=64 --top_k=20
  python -m experiments.sample --workdir=/tmp/digits_prior --label=3 --temperature=0.8
  python -m experiments.sample --workdir=/tmp/digits_prior --label=3 --guidance_scale=3
  python -m experiments.sample --workdir=/tmp/mnist_maskgit --maskgit_steps=12
  python -m experiments.sample --workdir=workdir/quickstart/prior     # the quick start's

A VQ-VAE-2 bottom prior samples its top grids from the top prior in --top_prior_workdir
(default: its config.top_prior_workdir; where neither is set, it conditions on the
evaluation split's top grids); a top prior's samples are decoded only through a bottom
prior, so sample that one with this workdir as --top_prior_workdir.

  python -m experiments.sample --workdir=/tmp/vqvae2_bottom --top_prior_workdir=/tmp/vqvae2_top
"""
from __future__ import annotations

import os

from absl import flags

from experiments import cli

FLAGS = flags.FLAGS


def run(workdir: str, *, num_samples: int = 32, output: str | None = None,
        temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
        label: int | None = None, top_prior_workdir: str | None = None, seed: int = 0,
        guidance_scale: float | None = None, guidance_ramp: bool = False,
        maskgit_steps: int | None = None, choice_temperature: float | None = None) -> str:
  """Samples the prior in workdir and writes the PNG grid (see the module docstring);
  returns its path. What was asked is checked (config.json only) before anything loads."""
  # Imported here, so that --help answers at once.
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from vqjax.runner import (images, prior_task,  # pylint: disable=import-outside-toplevel
                            workdir as workdir_lib)
  sampling_args = dict(temperature=temperature, top_k=top_k, top_p=top_p)
  options = dict(guidance_scale=guidance_scale, maskgit_steps=maskgit_steps,
                 choice_temperature=choice_temperature,
                 guidance_ramp=guidance_ramp if guidance_scale is not None else None)
  sampling_args.update({name: value for name, value in options.items() if value is not None})
  prior_task.check_sample_request(workdir, num_samples=num_samples, label=label,
                                  **sampling_args)
  check_output(output)
  prior, state = prior_task.restore_prior_workdir(workdir)
  top_prior = (prior_task.restore_top_prior(prior, top_prior_workdir)
               if top_prior_workdir else None)
  labels = None if label is None else np.full(num_samples, label, np.int32)
  samples = prior_task.sample_images(prior, state, jax.random.PRNGKey(seed),
                                     num_samples=num_samples, labels=labels,
                                     top_prior=top_prior, **sampling_args)
  grid = images.image_grid(samples, value_range=prior.tokenizer.config.data.value_range)
  path = output or workdir_lib.new_samples_path(workdir_lib.absolute_path(workdir))
  images.save_png(path, grid)
  print(f"wrote {num_samples} samples of the checkpoint at step {int(state.step)} to {path}")
  return path


def main(argv):
  cli.check_no_arguments(argv, "--workdir=PRIOR_DIR --num_samples=32")
  cli.check_run_workdir(FLAGS.workdir, command="sample", prior=True)
  cli.setup_console()
  run(FLAGS.workdir, num_samples=FLAGS.num_samples, output=FLAGS.output,
      temperature=FLAGS.temperature, top_k=FLAGS.top_k, top_p=FLAGS.top_p, label=FLAGS.label,
      top_prior_workdir=FLAGS.top_prior_workdir, seed=FLAGS.seed,
      guidance_scale=FLAGS.guidance_scale, guidance_ramp=FLAGS.guidance_ramp,
      maskgit_steps=FLAGS.maskgit_steps, choice_temperature=FLAGS.choice_temperature)


def check_output(output: str | None) -> None:
  """Raises a ValueError naming the fix for an --output that cannot be written."""
  if output is None or "://" in output:
    return
  if os.path.isdir(output):
    raise ValueError(f"--output={output} is a directory; pass a file name, e.g. "
                     f"--output={os.path.join(output, 'samples.png')}")
  parent = os.path.dirname(os.path.abspath(output))
  if not os.path.isdir(parent):
    raise ValueError(f"--output={output}: its directory {parent} does not exist; create it "
                     "or pass another path")


def define_flags():
  # Defined only when run as a program, so that tests import this module beside the other
  # entry points without defining the shared flag names twice.
  flags.DEFINE_string("workdir", None, "The workdir of experiments.train_prior.")
  flags.DEFINE_string("output", None, "PNG to write (default: a new "
                      "<workdir>/samples_<UTC time>.png).")
  flags.DEFINE_integer("num_samples", 32, "Number of images.")
  flags.DEFINE_integer("label", None, "Class of every sample (class-conditional priors; "
                       "default: the classes in turn).")
  flags.DEFINE_string("top_prior_workdir", None, "A VQ-VAE-2 bottom prior's top prior "
                      "(default: the bottom prior's config.top_prior_workdir).")
  flags.DEFINE_integer("seed", 0, "Sampling seed.")
  cli.define_sampling_flags(temperature=1.0)
  flags.mark_flags_as_required(["workdir"])


if __name__ == "__main__":
  define_flags()
  cli.run(main)
