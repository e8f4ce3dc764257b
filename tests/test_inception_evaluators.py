"""rFID and generation FID through the loop's evaluators (vqjax.runner.inception_evaluators,
vqjax.runner.prior_evaluation): the values equal FID computed by hand from the same images'
features, the split statistics are cached, and bad requests fail before any pass."""
import types

import jax
import numpy as np
import pytest

import train_testing
from experiments.configs import prior_digits
from vqjax import metrics
from vqjax.runner import (experiment, inception_evaluators, prior_evaluation, prior_task,
                          tokenizer_task)
from vqjax.runner.fid_evaluator import InceptionEvaluator
from vqjax.train import parallel

IMAGES = 8  # two chunks of 4 on the 4 CPU devices


@pytest.fixture(scope="module")
def inception():
  try:
    return InceptionEvaluator(per_device_batch=1, progress=False)
  except ValueError as error:
    pytest.skip(f"FID Inception weights not installed ({error})")


@pytest.fixture(scope="module")
def tokenizer_workdir(tmp_path_factory):
  data_dir = train_testing.prepare_digits(str(tmp_path_factory.mktemp("tfds")))
  config = train_testing.tiny_config(data_dir, num_steps=2, checkpoint_every_steps=2)
  config.data.update(eval_split="test[:24]", eval_batch_size=8)
  workdir = str(tmp_path_factory.mktemp("tokenizer"))
  tokenizer_task.train_tokenizer(config, workdir)
  return workdir


def _fid_by_hand(inception, images, reference_images):
  stats = [metrics.feature_statistics(inception.features([x], value_range=(-1, 1),
                                                         clip=True)["pool3"])
           for x in (images, reference_images)]
  return metrics.fid(*stats, method="eigh")


def test_rfid_is_the_fid_of_the_reconstructions_against_the_same_images(
    inception, tokenizer_workdir, tmp_path, monkeypatch):
  run, state = tokenizer_task.restore_workdir(tokenizer_workdir)
  evaluator = inception_evaluators.ReconstructionFIDEvaluator(
      run, inception=inception, cache_dir=str(tmp_path), max_images=IMAGES, fid_method="eigh")
  with pytest.warns(UserWarning, match="images for 2048 features"):  # 8 images < 2048 features
    results = dict(evaluator.run(state))
  assert results["rfid_images"] == IMAGES and results["grayscale_repeated"] == 1.0

  reconstruct = parallel.eval_step(run.model)
  pairs = [(np.asarray(b["image"]), np.asarray(reconstruct(state, b)[1]))
           for b in experiment.eval_batches(run)]
  images, reconstructions = (np.concatenate([p[i].reshape(-1, 8, 8, 1) for p in pairs])[:IMAGES]
                             for i in (0, 1))
  with pytest.warns(UserWarning):
    expected = _fid_by_hand(inception, reconstructions, images)
  np.testing.assert_allclose(results["rfid"], expected, rtol=1e-4)
  assert results["rfid"] > 1.0  # two untrained steps reconstruct poorly

  # The split's statistics were cached; asked again, the split is not read.
  (cached,) = list(tmp_path.iterdir())
  assert "test" in cached.name
  def no_reading(*args, **kwargs):
    raise AssertionError("the split was read again")
  monkeypatch.setattr(experiment, "eval_batches", no_reading)
  again = inception_evaluators.split_reference(inception, run, split=run.config.data.eval_split,
                                               cache_dir=str(tmp_path), max_images=IMAGES)
  assert again.count == IMAGES and list(tmp_path.iterdir()) == [cached]


def test_generation_fid_scores_the_samples_the_prior_draws(inception, tokenizer_workdir,
                                                           tmp_path):
  config = prior_digits.get_config("tiny")
  config.update(tokenizer_workdir=tokenizer_workdir)
  config.data.update(eval_split="test[:8]")
  config.train.update(num_steps=1, num_samples=4)
  prior_task.train_prior(config, str(tmp_path / "prior"))
  run, state = prior_task.restore_prior_workdir(str(tmp_path / "prior"))
  evaluator = prior_evaluation.GenerationFIDEvaluator(
      run, num_samples=IMAGES, batch_size=4, inception=inception,
      cache_dir=str(tmp_path / "cache"), fid_method="eigh", temperature=1.0)
  with pytest.warns(UserWarning):
    results = dict(evaluator.run(state))
  assert results["fid_samples"] == IMAGES and "inception_score" not in results
  assert results["sampling_batch_size"] == 4 and results["sampling_images_per_second"] > 0

  # The protocol by hand: keys folded from the seed, the step and each batch's start;
  # a class-conditional prior's labels are the classes in turn; against all 8 images of
  # the evaluation split (their statistics as cached: the rFID test checks that path).
  key = jax.random.fold_in(jax.random.PRNGKey(config.seed), int(state.step))
  num_classes = config.model.num_classes
  samples = np.concatenate([prior_task.sample_images(
      run, state, jax.random.fold_in(key, start), num_samples=4, temperature=1.0,
      labels=np.arange(start, start + 4) % num_classes if num_classes else None)
      for start in (0, 4)])
  (cached,) = list((tmp_path / "cache").iterdir())
  assert "test[:8]" in metrics.load_statistics(str(cached))[1]["split"]
  reference, _ = metrics.load_statistics(str(cached))
  assert reference.count == 8
  sample_stats = metrics.feature_statistics(
      inception.features([samples], value_range=(-1, 1), clip=True)["pool3"])
  with pytest.warns(UserWarning):
    expected = metrics.fid(sample_stats, reference, method="eigh")
  np.testing.assert_allclose(results["fid"], expected, rtol=1e-4)


def test_sampling_throughput_leaves_out_the_compiling_first_batch():
  assert prior_evaluation.sampling_images_per_second([9.0, 0.5, 1.5], 64) == 64.0
  assert prior_evaluation.sampling_images_per_second([9.0], 64) is None


def test_requests_that_cannot_be_scored_fail_before_any_pass(inception):
  top = types.SimpleNamespace(level="top", config={})
  with pytest.raises(ValueError, match="top prior has no images of its own"):
    prior_evaluation.GenerationFIDEvaluator(top, inception=inception)
  bottom = types.SimpleNamespace(level="bottom", config={})
  with pytest.raises(ValueError, match="needs its top prior's samples.*top_prior_workdir"):
    prior_evaluation.GenerationFIDEvaluator(bottom, inception=inception)
  single = types.SimpleNamespace(level=None, config={})
  with pytest.raises(ValueError, match="at least 2 images"):
    prior_evaluation.GenerationFIDEvaluator(single, num_samples=1, inception=inception)


def test_the_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
  monkeypatch.setenv(inception_evaluators.CACHE_ENVIRONMENT_VARIABLE, str(tmp_path))
  assert inception_evaluators.default_cache_dir() == str(tmp_path / "inception_statistics")
  monkeypatch.delenv(inception_evaluators.CACHE_ENVIRONMENT_VARIABLE)
  assert inception_evaluators.default_cache_dir().endswith(".cache/vqjax/inception_statistics")
