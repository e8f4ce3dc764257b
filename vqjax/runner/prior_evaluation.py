"""A prior's evaluation outside training: test NLL, samples and, on request, generation
FID of its decoded samples against the evaluation split (experiments.evaluate --fid).

    evaluate_prior_latest(workdir, fid=True)   the latest checkpoint, written to a new
                                               workdir/evaluations/step_<N>
    GenerationFIDEvaluator(run)                the loop's evaluator of the FID alone
"""
from __future__ import annotations

import time
from typing import Iterator, Sequence

from absl import logging
import jax
import ml_collections
import numpy as np

from vqjax import sampling
from vqjax.runner import (build, inception_evaluators, prior_sampling, prior_task, reports,
                          workdir as workdir_lib)
from vqjax.runner.fid_evaluator import InceptionEvaluator

DEFAULT_FID_SAMPLES = 10_000  # where a config predates config.train.fid_samples
DEFAULT_FID_BATCH = 250  # samples drawn (and decoded) at a time for the generation FID


class GenerationFIDEvaluator:
  """Generation FID (and IS where the weights have a classifier) of num_samples images
  sampled from a prior (a prior_task.PriorExperiment) and decoded by its tokenizer,
  against all of its evaluation split's images; a class-conditional prior samples the
  classes in turn. Samples are drawn batch_size at a time (one compiled sampler) with keys
  folded from config.seed and the checkpoint's step. A VQ-VAE-2 bottom prior samples over
  its top prior's grids (config.top_prior_workdir, or top_prior). sampling_args: those of
  prior_task.sample_images (temperature, top_k, top_p, ...); inception and fid_method as
  for inception_evaluators.ReconstructionFIDEvaluator.

  Yields fid, fid_samples, grayscale_repeated (and inception_score, inception_score_std),
  and, from the second batch on (the first compiles), sampling_images_per_second: images
  sampled and decoded per second at sampling_batch_size, the Inception pass excluded.
  """

  def __init__(self, run, *, num_samples: int = DEFAULT_FID_SAMPLES,
               batch_size: int = DEFAULT_FID_BATCH,
               inception: InceptionEvaluator | None = None, cache_dir: str | None = None,
               top_prior=None, fid_method: str = "sqrtm", **sampling_args):
    inception_evaluators.check_image_count("num_samples", num_samples)
    prior_task.check_num_samples(batch_size)
    if run.level == "top":
      raise ValueError("a VQ-VAE-2 top prior has no images of its own to score; evaluate "
                       "the bottom prior (its config.top_prior_workdir names this one)")
    if run.level == "bottom" and top_prior is None and not run.config.get("top_prior_workdir"):
      raise ValueError("the generation FID of a VQ-VAE-2 bottom prior needs its top prior's "
                       "samples to condition on; set --config.top_prior_workdir=TOP_PRIOR_DIR")
    self._run, self._num_samples, self._cache_dir = run, num_samples, cache_dir
    self._batch_size = min(batch_size, num_samples)
    self._inception = inception or InceptionEvaluator()
    self._top_prior, self._sampling_args = top_prior, sampling_args
    self._fid_method = fid_method

  def run(self, state) -> Iterator[tuple[str, float]]:
    run = self._run
    reference = inception_evaluators.split_reference(
        self._inception, run.tokenizer, split=run.config.data.eval_split,
        cache_dir=self._cache_dir)
    top_prior = self._top_prior
    if top_prior is None and run.level == "bottom":
      top_prior = prior_task.restore_top_prior(run)
    key = jax.random.fold_in(jax.random.PRNGKey(run.config.seed), int(state.step))
    num_classes = run.config.model.get("num_classes", 0) or 0

    batch_seconds = []

    def samples():
      for start in range(0, self._num_samples, self._batch_size):
        labels = None
        if run.class_conditional:
          labels = (np.arange(start, start + self._batch_size) % num_classes).astype(np.int32)
        started = time.perf_counter()
        images = prior_task.sample_images(
            run, state, jax.random.fold_in(key, start), num_samples=self._batch_size,
            labels=labels, top_prior=top_prior, **self._sampling_args)
        batch_seconds.append(time.perf_counter() - started)  # images are on the host
        yield images

    results = self._inception.evaluate(
        samples(), reference, value_range=tuple(run.tokenizer.config.data.value_range),
        clip=True, max_images=self._num_samples, fid_method=self._fid_method)
    yield "fid", results["fid"]
    yield "fid_samples", results["num_images"]
    yield "grayscale_repeated", results["grayscale_repeated"]
    throughput = sampling_images_per_second(batch_seconds, self._batch_size)
    if throughput is not None:
      yield "sampling_images_per_second", throughput
      yield "sampling_batch_size", self._batch_size
    if "inception_score" in results:
      yield "inception_score", results["inception_score"]
      yield "inception_score_std", results["inception_score_std"]
    else:
      logging.info(inception_evaluators.NO_CLASSIFIER_NOTE)


def sampling_images_per_second(batch_seconds: Sequence[float],
                               batch_size: int) -> float | None:
  """Images per second over every batch but the first (which compiles the sampler and
  the decoder); None with fewer than two batches."""
  if len(batch_seconds) < 2:
    return None
  return batch_size * (len(batch_seconds) - 1) / sum(batch_seconds[1:])


def evaluate_prior_latest(workdir: str, *, fid: bool = False, num_samples: int | None = None,
                          cache_dir: str | None = None, inception: InceptionEvaluator | None = None,
                          fid_batch_size: int = DEFAULT_FID_BATCH,
                          **sampling_overrides) -> reports.Evaluation:
  """Evaluates the latest readable checkpoint of a prior's workdir: test NLL (a MaskGIT
  prior: masked-token NLL and accuracy), samples.png (not for a VQ-VAE-2 top prior) and
  with fid the generation FID of num_samples samples (default config.train.fid_samples,
  10,000) drawn fid_batch_size at a time; writes metrics.json and the PNGs into a new
  workdir/evaluations/step_<N>, never over the training run's. sampling_overrides
  (temperature, top_k, top_p, guidance_scale, guidance_ramp, maskgit_steps,
  choice_temperature) replace the config's sampling settings for the samples and the FID
  alike; what was asked is checked (config.json only) before anything is restored.
  inception: the network and weights (default InceptionEvaluator())."""
  check_evaluation_request(workdir, fid=fid, **sampling_overrides)
  run, state = prior_task.restore_prior_workdir(workdir)
  run = run._replace(config=config_with_sampling(run.config, sampling_overrides))
  evaluators = list(prior_task.prior_task(run).make_evaluators())
  if fid:
    num_samples = num_samples or run.config.train.get("fid_samples", DEFAULT_FID_SAMPLES)
    evaluators.append(GenerationFIDEvaluator(
        run, num_samples=num_samples, batch_size=fid_batch_size, cache_dir=cache_dir,
        inception=inception, **prior_sampling.sampling_args_of(run.config.train)))
  return reports.evaluate_into_new_directory(workdir, evaluators, state)


def check_evaluation_request(workdir: str, *, fid: bool, **sampling_overrides) -> None:
  """A ValueError naming the fix, from config.json alone, for a workdir that is not a
  prior's, sampling settings the prior cannot take, or the FID of a top prior."""
  config = workdir_lib.load_config(workdir_lib.absolute_path(workdir))
  prior_task.check_prior_config(workdir, config)
  config = config_with_sampling(config, sampling_overrides)
  level = config.get("level")
  if fid and level == "top":
    raise ValueError(f"{workdir} holds a VQ-VAE-2 top prior, which has no images of its own "
                     "to score; evaluate --fid the bottom prior (its config.top_prior_workdir "
                     "names this one)")
  prior = build.build_prior(config.model, codebook_size=1, grid_shape=(1, 1),
                            condition_codebook_size=int(level == "bottom"))
  sampling.check_prior_sampling_args(prior, **prior_sampling.sampling_args_of(config.train))


def config_with_sampling(config, sampling_overrides: dict):
  """A copy of a prior's config with its train section's sampling settings replaced."""
  config = ml_collections.ConfigDict(config.to_dict())
  config.train.update(sampling_overrides)
  return config
