"""Images sampled from a prior over token grids (a vqjax.runner.prior_loop run): grids
drawn by a compiled sampler, decoded by the prior's tokenizer.

    make_prior_sampler(model, grid_shape=, batch_size=, **sampling)
        the jitted sampler(params, rng, labels=None, condition=None) -> int32 grids,
        built once per model, grid shape, batch size and sampling arguments
    sample_grids(run, state, rng, num_samples=, labels=None, condition=None, **sampling)
        int32 grids [num_samples, h, w] of one prior, its labels defaulted and checked
    sample_and_decode(run, state, rng, num_samples=, labels=None, top_prior=None, **sampling)
        float32 images [num_samples, H, W, C] (prior_loop.sample_images restores the
        top prior of config.top_prior_workdir and calls it)

What sample_and_decode decodes depends on the tokenizer and the prior's level:
  single grid     (any tokenizer but a VQ-VAE-2) the sampled grids.
  level 'bottom'  bottom grids sampled given top grids, decoded with those top grids. The
                  top grids are sampled from top_prior, a trained top prior over the same
                  tokenizer's grids (prior_loop restores config.top_prior_workdir's), or,
                  without one, are the evaluation split's first num_samples top grids (with
                  their labels): the images then show the bottom prior's detail over the
                  layout of real images.
  level 'top'     no images: a VQ-VAE-2 decodes a top and a bottom grid together, and
                  sampled top grids decoded with real bottom grids would mostly show the
                  real images (the bottom grid carries the detail). Sample the bottom
                  prior with this one as its top prior instead.
"""
from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from vqjax import maskgit, sampling

TOP_PRIOR_ERROR = (
    "a VQ-VAE-2 top prior's samples cannot be decoded alone (the tokenizer decodes a top "
    "and a bottom grid together); sample a bottom prior over the same tokenizer with this "
    "top prior: python -m experiments.sample --workdir=BOTTOM_PRIOR_WORKDIR "
    "--top_prior_workdir=THIS_WORKDIR")


@functools.lru_cache(maxsize=8)
def make_prior_sampler(model, *, grid_shape: tuple[int, int], batch_size: int,
                       **sampling_args) -> Callable:
  """The jitted `sampler(params, rng, labels=None, condition=None)` -> int32 grids
  [batch_size, h, w]; cached, so each compiles once.

  sampling_args: vqjax.sampling.sample_prior's (temperature, top_k, top_p, greedy,
  guidance_scale, guidance_ramp; MaskGIT: maskgit_steps, choice_temperature).
  vqjax.sampling.make_sampler samples any prior: with its key-value cache where it has one
  (the transformer), else recomputing the grid every step (the PixelCNN).
  """
  if tuple(grid_shape) != tuple(model.grid_shape):
    raise ValueError(f"grid_shape {tuple(grid_shape)} is not the prior's "
                     f"{tuple(model.grid_shape)}; pass the grid shape the prior was built for")
  sampler = sampling.make_sampler(model, batch_size=batch_size, **sampling_args)
  return lambda params, rng, labels=None, condition=None: sampler(
      {"params": params}, rng, labels, condition)


SAMPLING_FIELDS = ("temperature", "top_k", "top_p", "guidance_scale", "guidance_ramp",
                   "maskgit_steps", "choice_temperature")


def sampling_args_of(train_config) -> dict:
  """The sampling arguments set in config.train (SAMPLING_FIELDS; unset ones left out, so
  that a causal prior gets no MaskGIT option, and a config written before guidance none)."""
  args = {name: train_config.get(name, None) for name in SAMPLING_FIELDS}
  if args["guidance_scale"] is None:
    args["guidance_ramp"] = None
  return {name: value for name, value in args.items() if value is not None}


def args_for(model, sampling_args: dict) -> dict:
  """sampling_args without those that do not apply to a VQ-VAE-2 top prior sampled for a
  bottom prior: MaskGIT's options for a causal top prior (and num_steps for a MaskGIT one),
  guidance for an unconditional one."""
  args = dict(sampling_args)
  drop = (("num_steps",) if maskgit.is_masked_prior(model)
          else sampling.MASKGIT_OPTIONS)
  if not getattr(model, "num_classes", 0):
    drop += ("guidance_scale", "guidance_ramp")
  return {name: value for name, value in args.items() if name not in drop}


def sample_grids(run, state, rng, *, num_samples: int, labels=None, condition=None,
                 **sampling_args) -> np.ndarray:
  """Int32 grids [num_samples, h, w] sampled from the prior of run (a PriorExperiment).

  labels: int32 [num_samples] for a class-conditional prior (default: the classes in
  turn); condition: the top grids [num_samples, h', w'] for a bottom prior.
  """
  num_classes = run.config.model.num_classes
  if run.class_conditional and labels is None:
    labels = np.arange(num_samples) % num_classes
  if run.class_conditional and not np.all((0 <= np.asarray(labels))
                                          & (np.asarray(labels) < num_classes)):
    raise ValueError(f"labels {np.unique(labels).tolist()} are outside [0, {num_classes}); "
                     f"pass classes the prior was trained on")
  if not run.class_conditional and labels is not None:
    raise ValueError("labels were given but the prior is unconditional; drop them, or train "
                     "a prior with config.model.num_classes > 0")
  sampler = make_prior_sampler(run.model, grid_shape=run.grid_shape, batch_size=num_samples,
                               **sampling_args)  # checks labels are classes, not null
  grids = sampler(jax.device_get(state.params), rng, _int32(labels), _int32(condition))
  return np.asarray(grids)


def sample_and_decode(run, state, rng, *, num_samples: int, labels=None, top_prior=None,
                      **sampling_args) -> np.ndarray:
  """Float32 images [num_samples, H, W, C] sampled from the prior of run (a
  PriorExperiment) and decoded by its tokenizer (see the module docstring).

  labels: int32 [num_samples], for whichever prior is class-conditional (default: the
  classes in turn, or the evaluation split's labels with its top grids); top_prior: a
  (PriorExperiment, TrainState) of a top prior, for a bottom prior only.
  """
  if run.level == "top":
    raise ValueError(TOP_PRIOR_ERROR)
  if run.level is None:
    if top_prior is not None:
      raise ValueError("a top prior was given but this prior models a single-grid "
                       "tokenizer's grids; drop top_prior (it is for VQ-VAE-2 bottom priors)")
    return decode_grids(run, sample_grids(run, state, rng, num_samples=num_samples,
                                          labels=labels, **sampling_args))
  top_rng, bottom_rng = jax.random.split(rng)
  if top_prior is None:
    if run.eval_grids.num_examples < num_samples:
      raise ValueError(f"the evaluation split {run.eval_grids.split!r} has "
                       f"{run.eval_grids.num_examples} top grids to condition on, fewer than "
                       f"num_samples={num_samples}; sample fewer, or set "
                       "config.top_prior_workdir to sample the top grids")
    top = run.eval_grids.grids["condition"][:num_samples]
    if labels is None and run.class_conditional:
      labels = run.eval_grids.labels[:num_samples]
  else:
    top_run, top_state = top_prior
    check_top_prior(run, top_run)
    if labels is not None and not (run.class_conditional or top_run.class_conditional):
      raise ValueError("labels were given but neither the bottom nor the top prior is "
                       "class-conditional; drop them")
    top = sample_grids(top_run, top_state, top_rng, num_samples=num_samples,
                       labels=labels if top_run.class_conditional else None,
                       **args_for(top_run.model, sampling_args))
  bottom = sample_grids(run, state, bottom_rng, num_samples=num_samples,
                        labels=labels if run.class_conditional else None, condition=top,
                        **sampling_args)
  return decode_grids(run, top, bottom)


def check_top_prior(run, top_run) -> None:
  """Raises a ValueError naming the fix unless top_run is a top prior that fits run's
  bottom prior: the same tokenizer's top grids."""
  if top_run.level != "top":
    raise ValueError(f"the top prior has config.level={top_run.level!r}, not 'top'; pass a "
                     "prior trained with config.level='top'")
  if top_run.config.tokenizer_workdir != run.config.tokenizer_workdir:
    raise ValueError(f"the top prior models the grids of {top_run.config.tokenizer_workdir} "
                     f"but this bottom prior those of {run.config.tokenizer_workdir}; pass a "
                     "top prior trained over the same tokenizer")
  if tuple(top_run.grid_shape) != tuple(run.condition_shape):
    raise ValueError(f"the top prior samples {tuple(top_run.grid_shape)} grids but this bottom "
                     f"prior is conditioned on {tuple(run.condition_shape)} top grids; pass a "
                     "top prior trained over the same tokenizer checkpoint")


def decode_grids(run, *grids) -> np.ndarray:
  """Float32 images of token grids (a VQ-VAE-2's: top, bottom), by run's tokenizer."""
  variables = jax.device_get(run.tokenizer_state.variables)
  return np.asarray(_decode(run.tokenizer.model)(variables, *map(_int32, grids)))


@functools.lru_cache(maxsize=4)
def _decode(tokenizer_model) -> Callable:
  return jax.jit(functools.partial(tokenizer_model.apply, method="decode_indices"))


def _int32(array):
  return None if array is None else jnp.asarray(array, jnp.int32)
