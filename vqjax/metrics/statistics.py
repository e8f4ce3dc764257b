"""Feature statistics accumulated over batches: count, mean and scatter in float64 on the host.

    stats = init_statistics(2048)
    for features in batches:             # [batch, 2048] from the Inception network
      stats = update_statistics(stats, features)
    mean, covariance = mean_and_covariance(stats)

update_statistics merges each batch with Chan et al.'s parallel formula (mean and the sum of
squared deviations), so the result equals np.mean / np.cov of all features at once without
holding them, and stays accurate where a running sum of outer products would cancel.
Pure functions of a NamedTuple, as optax states are.
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np


class FeatureStatistics(NamedTuple):
  count: int
  mean: np.ndarray     # [dim] float64
  scatter: np.ndarray  # [dim, dim] float64: sum of (x - mean)(x - mean)^T


def init_statistics(dim: int) -> FeatureStatistics:
  if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
    raise ValueError(f"dim is {dim!r}; it must be a positive int, e.g. 2048 for pool3")
  return FeatureStatistics(0, np.zeros(dim), np.zeros((dim, dim)))


def _check_features(features, dim: int) -> np.ndarray:
  features = np.asarray(features, np.float64)
  if features.ndim != 2 or features.shape[1] != dim:
    raise ValueError(f"features have shape {features.shape}; expected [batch, {dim}] "
                     "(flatten a [devices, batch, dim] layout with reshape(-1, dim))")
  if not np.isfinite(features).all():
    raise ValueError("features hold NaN or infinity; check the images fed to the network "
                     "(they must be finite and in range)")
  return features


def merge_statistics(a: FeatureStatistics, b: FeatureStatistics) -> FeatureStatistics:
  """The statistics of the union of two sets of features."""
  if a.mean.shape != b.mean.shape:
    raise ValueError(f"cannot merge statistics of dims {a.mean.shape[0]} and "
                     f"{b.mean.shape[0]}; both must come from the same feature layer")
  count = a.count + b.count
  if count == 0:
    return a
  delta = b.mean - a.mean
  mean = a.mean + delta * (b.count / count)
  scatter = a.scatter + b.scatter + np.outer(delta, delta) * (a.count * b.count / count)
  return FeatureStatistics(count, mean, scatter)


def update_statistics(stats: FeatureStatistics, features) -> FeatureStatistics:
  """stats with a batch of features [batch, dim] added."""
  features = _check_features(features, stats.mean.shape[0])
  if features.shape[0] == 0:
    return stats
  mean = features.mean(axis=0)
  centered = features - mean
  return merge_statistics(stats, FeatureStatistics(features.shape[0], mean,
                                                   centered.T @ centered))


def feature_statistics(features) -> FeatureStatistics:
  """The statistics of all features [N, dim] at once."""
  features = np.asarray(features)
  if features.ndim != 2:
    raise ValueError(f"features have shape {features.shape}; expected [N, dim]")
  return update_statistics(init_statistics(features.shape[1]), features)


def mean_and_covariance(stats: FeatureStatistics) -> tuple[np.ndarray, np.ndarray]:
  """(mean [dim], unbiased covariance [dim, dim]) as np.mean and np.cov(rowvar=False) give.

  Raises with fewer than 2 features; warns with fewer than dim (the covariance is then
  singular and FID is biased: papers use 10,000 or 50,000 images for 2048 features).
  """
  dim = stats.mean.shape[0]
  if stats.count < 2:
    raise ValueError(f"statistics of {stats.count} image(s) have no covariance; FID needs "
                     f"at least 2 images per set (and {dim} or more for a full-rank "
                     "covariance; papers use 10,000 or 50,000)")
  if stats.count < dim:
    warnings.warn(f"statistics of {stats.count} images for {dim} features: the covariance "
                  f"is singular and FID is biased upward; use at least {dim} images "
                  "(papers use 10,000 or 50,000) and compare FIDs only at equal counts",
                  stacklevel=2)
  return stats.mean, stats.scatter / (stats.count - 1)
