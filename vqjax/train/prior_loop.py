"""train_prior(config, workdir): an autoregressive prior over a tokenizer's token grids,
restartable at any point, with the tokenizer loop's machinery (vqjax.train.loop).

    workdir/config.json          the config (experiments.sample reads it)
    workdir/checkpoints/<step>   prior train states, as the tokenizer loop keeps them
    workdir/tensorboard/         train and eval scalars, samples
    workdir/samples.png          token grids sampled from the prior, decoded by the tokenizer
    workdir/metrics.json         test NLL: nll_nats_per_token, nll_nats_per_image,
                                 bits_per_dim (the grid's NLL in bits over the image's
                                 H * W * C, as the VQ-VAE paper reports) and bits_per_token

The token grids are those of config.tokenizer_workdir's latest checkpoint
(vqjax.tokens; encoded and cached there when missing or stale). Restarts, SIGTERM and
non-finite losses behave as in vqjax.train.loop. Only VQ-VAE tokenizers with one grid
per image are supported (not VQ-VAE-2, residual or grouped quantizers).
"""
from __future__ import annotations

import functools
import json
import math
import os
from typing import Callable, NamedTuple

from absl import logging
from etils import epath
import jax
import jax.numpy as jnp
import flax.linen as nn
import ml_collections
import numpy as np

from vqjax import models, sampling, tokens
from vqjax.train import (build, distributed, experiment, images, loop, parallel, prior_steps,
                         summaries)
from vqjax.train import optimizer as optimizer_lib
from vqjax.train.state import TrainState


class PriorExperiment(NamedTuple):
  config: ml_collections.ConfigDict
  tokenizer: experiment.Experiment   # the tokenizer's experiment, and its state:
  tokenizer_state: TrainState        # decode_indices turns samples into images
  train_grids: tokens.TokenGrids
  eval_grids: tokens.TokenGrids
  model: nn.Module                   # the prior
  optimizer: optimizer_lib.Optimizer
  init: Callable[[], TrainState]
  abstract_state: TrainState

  @property
  def class_conditional(self) -> bool:
    return prior_steps.is_class_conditional(self.model)


def prepare_prior(config: ml_collections.ConfigDict) -> PriorExperiment:
  """Restores the tokenizer, loads (or encodes) its token grids, builds the prior."""
  config = ml_collections.ConfigDict(config.to_dict())
  if not config.tokenizer_workdir:
    raise ValueError("config.tokenizer_workdir is not set; pass the workdir of a trained "
                     "tokenizer: --config.tokenizer_workdir=DIR")
  config.tokenizer_workdir = experiment.absolute_path(config.tokenizer_workdir)
  experiment.check_train_config(config.train)
  tokenizer, tokenizer_state = loop.restore_workdir(config.tokenizer_workdir)
  if not isinstance(tokenizer.model, models.VQVAE):
    raise ValueError(f"the tokenizer in {config.tokenizer_workdir} is a "
                     f"{type(tokenizer.model).__name__}; train_prior models one grid per "
                     "image, so train a VQ-VAE tokenizer (config.model.name='vqvae')")
  grids = {split: tokens.load_token_grids(config.tokenizer_workdir, split=split, rebuild=True)
           for split in (config.data.train_split, config.data.eval_split)}
  train_grids, eval_grids = grids[config.data.train_split], grids[config.data.eval_split]
  token_grid = train_grids.grids["tokens"]
  if token_grid.ndim != 3:
    raise ValueError(f"the tokenizer's token grids have shape {token_grid.shape[1:]}, not "
                     "[h, w]; train_prior takes single-codebook quantizers (not residual or "
                     "grouped)")
  num_classes = config.model.get("num_classes", 0) or 0
  if num_classes and train_grids.labels is None:
    raise ValueError(f"config.model.num_classes is {num_classes} but the dataset has no "
                     "labels; set config.model.num_classes=0")
  codebook_size = build.codebook_size(build.quantizers_of(tokenizer.model)[""])
  model = build.build_prior(config.model, codebook_size=codebook_size,
                            grid_shape=token_grid.shape[1:])
  optimizer = experiment.build_optimizer(config)
  init = parallel.init_prior_state(model, optimizer.transform, seed=config.seed,
                                   grid_shape=token_grid.shape[1:],
                                   class_conditional=bool(num_classes))
  abstract_state = parallel.abstract_state(init)  # the prior's own checks run here
  return PriorExperiment(config, tokenizer, tokenizer_state, train_grids, eval_grids, model,
                         optimizer, init, abstract_state)


def train_prior(config: ml_collections.ConfigDict, workdir: str) -> dict | None:
  """Trains (or resumes) the prior and evaluates it; returns the final metrics, None if
  preempted."""
  distributed.maybe_initialize(**config.distributed.to_dict())
  run = prepare_prior(config)
  workdir = experiment.absolute_path(workdir)
  with loop.training_run(run, workdir) as (checkpoints, writer):
    state = checkpoints.restore_latest(run.abstract_state)
    if state is None:
      state = run.init()
    else:
      logging.info("resuming from the checkpoint at step %d in %s", int(state.step),
                   checkpoints.directory)
    batches = tokens.make_token_iterator(
        run.train_grids, batch_size=run.config.data.batch_size, seed=run.config.seed,
        start_step=int(state.step))
    evaluator = PriorEvaluator(run)
    train_fn = parallel.prior_train_step(run.model, run.optimizer.transform)
    state = loop.train_steps(run, state, batches, train_fn, checkpoints, writer, evaluator)
    if state is None:
      return None
    checkpoints.save(state)
    return evaluator.report(state, workdir, writer=writer)


def restore_prior_workdir(workdir: str) -> tuple[PriorExperiment, TrainState]:
  """The prior experiment saved in a train_prior workdir and its latest checkpoint."""
  return loop.restore_workdir(workdir, prepare=prepare_prior)


def make_prior_sampler(model, *, grid_shape: tuple[int, int], batch_size: int,
                       **sampling_args) -> Callable:
  """The jitted `sampler(params, rng, labels=None)` -> int32 grids [batch_size, h, w].

  sampling_args: temperature, top_k, top_p, greedy (vqjax.sampling.decode's). The
  transformer samples with its key-value cache, the PixelCNN recomputes every step.
  """
  if isinstance(model, models.TransformerPrior):
    sampler = sampling.make_sampler(model, batch_size=batch_size, **sampling_args)
    return lambda params, rng, labels=None: sampler({"params": params}, rng, labels)
  length = grid_shape[0] * grid_shape[1]

  @jax.jit
  def sample(params, rng, labels=None):
    def tokens_to_logits(sequence):
      grid = sequence.reshape(batch_size, *grid_shape)
      return model.apply({"params": params}, grid, labels=labels, train=False)

    sequence = sampling.decode_full_recompute(tokens_to_logits, rng, batch_size=batch_size,
                                              length=length, **sampling_args)
    return sequence.reshape(batch_size, *grid_shape)

  return sample


def sample_images(run: PriorExperiment, state: TrainState, rng, *, num_samples: int,
                  labels=None, sampler: Callable | None = None, **sampling_args) -> np.ndarray:
  """Float32 images [num_samples, H, W, C]: grids sampled from the prior, decoded by the
  tokenizer. labels: int32 [num_samples] for a class-conditional prior (default: the
  classes in turn)."""
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
  if sampler is None:
    sampler = make_prior_sampler(run.model, grid_shape=run.train_grids.grids["tokens"].shape[1:],
                                 batch_size=num_samples, **sampling_args)
  params = jax.device_get(state.params)
  grids = sampler(params, rng, None if labels is None else jnp.asarray(labels, jnp.int32))
  return np.asarray(_decode(run.tokenizer.model)(jax.device_get(run.tokenizer_state.variables),
                                                 grids))


@functools.lru_cache(maxsize=4)
def _decode(tokenizer_model) -> Callable:
  return jax.jit(functools.partial(tokenizer_model.apply, method="decode_indices"))


class PriorEvaluator:
  """Test NLL over the evaluation grids and decoded samples, each compiled once."""

  def __init__(self, run: PriorExperiment):
    self._run = run
    self._eval_fn = parallel.prior_eval_step(run.model)
    train_config = run.config.train
    self._sampling_args = dict(temperature=train_config.temperature, top_k=train_config.top_k,
                               top_p=train_config.top_p)
    self._sampler = make_prior_sampler(
        run.model, grid_shape=run.train_grids.grids["tokens"].shape[1:],
        batch_size=train_config.num_samples, **self._sampling_args)

  def evaluate(self, state: TrainState) -> dict[str, float]:
    sums = None
    for batch in tokens.make_token_iterator(
        self._run.eval_grids, batch_size=self._run.config.data.eval_batch_size, train=False):
      batch_sums = jax.device_get(self._eval_fn(state, batch))
      sums = batch_sums if sums is None else jax.tree.map(np.add, sums, batch_sums)
    count, nll = float(sums["count"]), float(sums["nll"])
    dims = math.prod(self._run.tokenizer.info.image_shape)
    return {"nll_nats_per_token": nll / float(sums["tokens"]),
            "nll_nats_per_image": nll / count,
            "bits_per_token": nll / float(sums["tokens"]) / math.log(2.0),
            "bits_per_dim": nll / count / math.log(2.0) / dims, "num_examples": count}

  def report(self, state: TrainState, workdir: str | None, *,
             writer: summaries.SummaryWriter | None = None) -> dict:
    """Evaluates and samples; writes TensorBoard summaries (with writer) and, given a
    workdir, metrics.json and samples.png there; returns the metrics."""
    step = int(state.step)
    metrics = {"step": step, **self.evaluate(state)}
    rng = jax.random.fold_in(jax.random.PRNGKey(self._run.config.seed), step)
    samples = sample_images(self._run, state, rng, num_samples=self._run.config.train.num_samples,
                            sampler=self._sampler)
    grid = images.image_grid(samples, value_range=self._run.tokenizer.config.data.value_range)
    if writer is not None:
      writer.scalars(step, {f"eval/{name}": value for name, value in metrics.items()
                            if name != "step"})
      writer.image(step, "eval/samples", grid)
      writer.flush()
    if workdir is not None and jax.process_index() == 0:
      images.save_png(os.path.join(workdir, "samples.png"), grid)
      (epath.Path(workdir) / "metrics.json").write_text(json.dumps(metrics, indent=2))
    logging.info("prior evaluation at step %d: %s", step, json.dumps(metrics))
    return metrics

