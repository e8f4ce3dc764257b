"""Tests for vqjax.runner.fid_evaluator: the pmapped Inception pass over 4 CPU devices,
streaming statistics, FID against itself and with noise, masks, grayscale and the cache."""
import warnings

import numpy as np
import pytest

from vqjax import metrics
from vqjax.runner.fid_evaluator import InceptionEvaluator


@pytest.fixture(scope="module")
def evaluator():
  try:
    return InceptionEvaluator(per_device_batch=2, progress=False)  # chunks of 8 on 4 devices
  except ValueError as error:
    pytest.skip(f"FID Inception weights not installed ({error})")


@pytest.fixture(scope="module")
def images():
  """8 smooth 32x32 uint8 images (blobs of random colours)."""
  rng = np.random.default_rng(0)
  grid = np.linspace(-1, 1, 32)
  blobs = [np.exp(-((grid[:, None] - rng.uniform(-1, 1)) ** 2 + (grid[None] - rng.uniform(
      -1, 1)) ** 2) / rng.uniform(0.05, 0.5))[..., None] * rng.uniform(0, 255, 3)
           for _ in range(8)]
  return np.clip(np.stack(blobs), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def reference(evaluator, images):
  return evaluator.statistics([images[:3], images[3:]])  # streamed over two batches


def _quiet(function, *args, **kwargs):
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # 8 images < 2048 features
    return function(*args, **kwargs)


@pytest.fixture(scope="module")
def features(evaluator, images):
  return evaluator.features([images])


def test_streaming_statistics_equal_one_shot_features(features, reference):
  assert features["pool3"].shape == (8, 2048) and features["pool0"].shape == (8, 64)
  one_shot = metrics.feature_statistics(features["pool3"])
  assert reference.count == 8
  np.testing.assert_allclose(reference.mean, one_shot.mean, rtol=1e-10, atol=1e-12)
  np.testing.assert_allclose(reference.scatter, one_shot.scatter, rtol=1e-8, atol=1e-10)


def test_fid_is_zero_against_itself_and_grows_with_noise(evaluator, images, features):
  # On the 64 pool0 features: FID of 2048 features costs minutes of sqrtm on 2 cores.
  clean = metrics.feature_statistics(features["pool0"])
  assert abs(_quiet(metrics.fid, clean, clean)) < 1e-6
  rng = np.random.default_rng(1)
  values = []
  for sigma in (10, 40):
    noisy = np.clip(images + rng.normal(0, sigma, images.shape), 0, 255)
    values.append(_quiet(metrics.fid, clean, evaluator.statistics([noisy], feature="pool0")))
  assert 0 < values[0] < values[1]


def test_masked_grayscale_device_batches(evaluator, images, reference):
  gray = images.mean(-1, keepdims=True) / 127.5 - 1  # in [-1, 1]
  batch = {"image": gray.reshape(4, 2, 32, 32, 1),
           "mask": np.array([[1, 1], [1, 1], [1, 0], [1, 1]], bool)}
  results = _quiet(evaluator.evaluate, [batch], reference, value_range=(-1, 1), max_images=6,
                   fid_method="eigh")
  assert results["num_images"] == 6 and results["grayscale_repeated"] == 1
  assert results["fid"] > 0 and "inception_score" not in results  # default_1.pt: no classifier
  with pytest.raises(ValueError, match="outside value_range"):
    evaluator.statistics([batch])  # [-1, 1] images read as [0, 255]


def test_split_statistics_are_cached_by_key(evaluator, images, tmp_path):
  calls = []

  def batches():
    calls.append(1)
    return [images]

  key = dict(cache_dir=str(tmp_path), dataset="blobs", split="test", image_size=32,
             max_images=4)
  first = evaluator.split_statistics(batches, **key)
  again = evaluator.split_statistics(batches, **key)
  assert len(calls) == 1 and first.count == again.count == 4
  np.testing.assert_array_equal(first.mean, again.mean)
  _, stored_key = metrics.load_statistics(metrics.statistics_cache_path(
      tmp_path, dataset="blobs", split="test", image_size=32, num_images=4,
      weights_sha1=evaluator.weights_sha1))
  assert stored_key["weights_sha1"] == evaluator.weights_sha1
  assert stored_key["image_size"] == [32, 32] and stored_key["num_images"] == 4


def test_no_images_and_bad_batches_are_refused(evaluator):
  with pytest.raises(ValueError, match="held no images"):
    evaluator.statistics([])
  with pytest.raises(ValueError, match="needs 'image'"):
    evaluator.statistics([{"pixels": np.zeros((1, 8, 8, 3))}])
