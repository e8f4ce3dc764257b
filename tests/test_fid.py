"""Tests for vqjax.metrics: streaming statistics, FID, the Inception Score, KID, the split
cache and the input checks (on synthetic features: no network needed)."""
import os
import warnings

import numpy as np
import pytest
from scipy import linalg

from vqjax import metrics


def _gaussian(n=400, dim=8, seed=0, shift=0.0):
  mixing = np.random.default_rng(100).normal(size=(dim, dim)) / np.sqrt(dim)
  return np.random.default_rng(seed).normal(size=(n, dim)) @ mixing + shift


def test_streaming_statistics_equal_one_shot():
  features = _gaussian(n=203) * 50 + 1e3  # a large offset: a naive running sum would cancel
  stats = metrics.init_statistics(8)
  for batch in np.array_split(features, [1, 2, 50, 51, 51, 140]):
    stats = metrics.update_statistics(stats, batch)
  mean, covariance = metrics.mean_and_covariance(stats)
  assert stats.count == 203
  np.testing.assert_allclose(mean, features.mean(0), rtol=1e-12)
  np.testing.assert_allclose(covariance, np.cov(features, rowvar=False), rtol=1e-9, atol=1e-9)
  one_shot = metrics.mean_and_covariance(metrics.feature_statistics(features))
  np.testing.assert_allclose(one_shot[1], covariance, rtol=1e-9, atol=1e-9)


def test_merge_statistics_is_the_union():
  a, b = _gaussian(seed=1), _gaussian(seed=2)
  merged = metrics.merge_statistics(metrics.feature_statistics(a), metrics.feature_statistics(b))
  expected = metrics.feature_statistics(np.concatenate([a, b]))
  np.testing.assert_allclose(merged.scatter, expected.scatter, rtol=1e-10, atol=1e-9)


def test_fid_of_a_set_against_itself_is_zero_and_grows_with_noise():
  features = _gaussian()
  stats = metrics.feature_statistics(features)
  assert abs(metrics.fid(stats, stats)) < 1e-6
  rng = np.random.default_rng(3)
  values = [metrics.fid(stats, metrics.feature_statistics(features + s * rng.normal(
      size=features.shape))) for s in (0.1, 0.3, 1.0)]
  assert 0 < values[0] < values[1] < values[2]


def test_eigh_method_equals_sqrtm():
  a, b = _gaussian(n=100, dim=32, seed=10), _gaussian(n=100, dim=32, seed=11, shift=0.2) ** 2
  stats_a, stats_b = metrics.feature_statistics(a), metrics.feature_statistics(b)
  assert metrics.fid(stats_a, stats_b, method="eigh") == pytest.approx(
      metrics.fid(stats_a, stats_b), rel=1e-9)
  with pytest.raises(ValueError, match="'eigh' the same trace"):
    metrics.fid(stats_a, stats_b, method="svd")


def test_frechet_distance_of_known_gaussians():
  # Diagonal covariances: |mu_a - mu_b|^2 + sum (sqrt(a) - sqrt(b))^2.
  a, b = np.array([1.0, 4.0]), np.array([9.0, 1.0])
  value = metrics.frechet_distance([0.0, 0.0], np.diag(a), [3.0, 4.0], np.diag(b))
  assert value == pytest.approx(25 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2))


def test_frechet_distance_matches_scipy_on_a_random_pair():
  a, b = _gaussian(seed=4), _gaussian(seed=5, shift=0.5)
  (mu_a, s_a), (mu_b, s_b) = (metrics.mean_and_covariance(metrics.feature_statistics(x))
                              for x in (a, b))
  expected = (np.sum((mu_a - mu_b) ** 2) + np.trace(s_a) + np.trace(s_b)
              - 2 * np.trace(linalg.sqrtm(s_a @ s_b).real))
  assert metrics.frechet_distance(mu_a, s_a, mu_b, s_b) == pytest.approx(expected, rel=1e-10)


def test_singular_covariances_give_a_finite_fid():
  singular = np.zeros((3, 3))  # FID of two point masses is |mu_a - mu_b|^2
  assert metrics.frechet_distance(np.zeros(3), singular, np.ones(3), singular) == \
      pytest.approx(3.0)


def test_too_few_images_raise_and_fewer_than_dim_warn():
  with pytest.raises(ValueError, match="at least 2 images"):
    metrics.mean_and_covariance(metrics.feature_statistics(np.ones((1, 8))))
  with pytest.warns(UserWarning, match="singular and FID is biased"):
    metrics.mean_and_covariance(metrics.feature_statistics(_gaussian(n=5)))
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    metrics.mean_and_covariance(metrics.feature_statistics(_gaussian(n=8)))


def test_mismatched_feature_dims_are_refused():
  with pytest.raises(ValueError, match=r"expected \[batch, 8\]"):
    metrics.update_statistics(metrics.init_statistics(8), np.ones((3, 4)))
  with pytest.raises(ValueError, match="same feature layer"):
    metrics.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_inception_score_of_one_repeated_image_is_one():
  logits = np.tile(np.random.default_rng(0).normal(size=(1, 1008)), (50, 1))
  mean, std = metrics.inception_score(logits)
  assert mean == pytest.approx(1.0, abs=1e-9) and std == pytest.approx(0.0, abs=1e-9)


def test_inception_score_of_confident_distinct_classes_is_the_class_count():
  logits = 100.0 * np.tile(np.eye(10), (10, 1))  # 100 images, 10 classes, each split sees all
  mean, _ = metrics.inception_score(logits, splits=1)
  assert mean == pytest.approx(10.0, rel=1e-6)
  with pytest.raises(ValueError, match="cannot be cut into 10 splits"):
    metrics.inception_score(logits[:5])


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
  a, b = _gaussian(n=300, seed=6), _gaussian(n=300, seed=7)
  same, _ = metrics.kernel_inception_distance(a, b, subset_size=100, num_subsets=20)
  different, _ = metrics.kernel_inception_distance(a, b + 1.0, subset_size=100, num_subsets=20)
  assert abs(same) < 0.05 * different and different > 0
  with pytest.raises(ValueError, match="subset_size <= 300"):
    metrics.kernel_inception_distance(a, b, subset_size=1000)


def test_kid_is_the_unbiased_polynomial_mmd_on_whole_sets():
  a, b = _gaussian(n=20, seed=8), _gaussian(n=20, seed=9, shift=0.3)
  k = lambda x, y: (x @ y.T / 8 + 1) ** 3
  m = 20
  expected = ((k(a, a).sum() - np.trace(k(a, a)) + k(b, b).sum() - np.trace(k(b, b)))
              / (m * (m - 1)) - 2 * k(a, b).mean())
  mean, std = metrics.kernel_inception_distance(a, b, subset_size=20, num_subsets=3)
  assert mean == pytest.approx(expected) and std == pytest.approx(0, abs=1e-12)


def test_inputs_are_scaled_to_0_255_and_grayscale_repeated():
  images = np.linspace(-1, 1, 2 * 4 * 4).reshape(2, 4, 4, 1)
  inputs = metrics.inception_inputs(images, (-1, 1))
  assert inputs.shape == (2, 4, 4, 3) and inputs.dtype == np.float32
  assert inputs.min() == 0 and inputs.max() == 255


def test_images_outside_the_value_range_are_refused_unless_clipped():
  images = np.full((1, 4, 4, 3), 1.5)
  with pytest.raises(ValueError, match=r"outside value_range \(-1, 1\).*clip=True"):
    metrics.inception_inputs(images, (-1, 1))
  with pytest.raises(ValueError, match="value_range=\\(-1, 1\\)"):
    metrics.inception_inputs(np.full((1, 4, 4, 3), -0.5), (0, 255))
  assert metrics.inception_inputs(images, (-1, 1), clip=True).max() == 255
  with pytest.raises(ValueError, match="1 or 3"):
    metrics.inception_inputs(np.zeros((1, 4, 4, 2)))


def _key(**overrides):
  return {"dataset": "cifar10", "split": "test", "image_size": 32, "weights_sha1": "a16e",
          **overrides}


def test_cache_paths_differ_for_every_key_field(tmp_path):
  paths = {metrics.statistics_cache_path(tmp_path, **_key(**change)) for change in (
      {}, {"image_size": 64}, {"image_size": (32, 16)}, {"split": "train"},
      {"dataset": "mnist"}, {"weights_sha1": "0000"}, {"resize": "pil"}, {"num_images": 100})}
  assert len(paths) == 8
  assert metrics.statistics_cache_path(tmp_path, **_key()) == \
      metrics.statistics_cache_path(tmp_path, **_key(image_size=(32, 32)))


def test_cached_statistics_compute_once_per_key(tmp_path):
  calls = []

  def compute(seed):
    calls.append(seed)
    return metrics.feature_statistics(_gaussian(seed=seed))

  first = metrics.cached_statistics(tmp_path, lambda: compute(0), **_key())
  again = metrics.cached_statistics(tmp_path, lambda: compute(1), **_key())
  other = metrics.cached_statistics(tmp_path, lambda: compute(2), **_key(image_size=64))
  assert calls == [0, 2]
  np.testing.assert_array_equal(first.scatter, again.scatter)
  assert not np.array_equal(first.mean, other.mean)
  assert sorted(os.listdir(tmp_path)) == sorted(
      os.path.basename(metrics.statistics_cache_path(tmp_path, **k))
      for k in (_key(), _key(image_size=64)))


def test_a_cache_file_of_another_key_is_recomputed(tmp_path):
  path = metrics.statistics_cache_path(tmp_path, **_key())
  metrics.save_statistics(path, metrics.feature_statistics(_gaussian(seed=0)), {"other": 1})
  fresh = metrics.feature_statistics(_gaussian(seed=1))
  result = metrics.cached_statistics(tmp_path, lambda: fresh, **_key())
  np.testing.assert_array_equal(result.mean, fresh.mean)
  assert metrics.load_statistics(path)[1] == metrics.statistics_key(**_key())
