"""The Fréchet distance between two Gaussians fitted to features: FID (Heusel et al. 2017).

    FID = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2))

The matrix square root is scipy.linalg.sqrtm's, as pytorch-fid computes it, including its
fallback: if the product is near-singular and the root is not finite, eps is added to both
diagonals; an imaginary part on the diagonal above 1e-3 is an error, below it is dropped.
"""
from __future__ import annotations

import numpy as np
from scipy import linalg

from vqjax.metrics.statistics import FeatureStatistics, mean_and_covariance


def frechet_distance(mean_a, covariance_a, mean_b, covariance_b, eps: float = 1e-6) -> float:
  """The Fréchet distance of N(mean_a, covariance_a) and N(mean_b, covariance_b), float64."""
  mean_a, mean_b = np.atleast_1d(np.float64(mean_a)), np.atleast_1d(np.float64(mean_b))
  covariance_a = np.atleast_2d(np.float64(covariance_a))
  covariance_b = np.atleast_2d(np.float64(covariance_b))
  if mean_a.shape != mean_b.shape or covariance_a.shape != covariance_b.shape or \
      covariance_a.shape != mean_a.shape * 2:
    raise ValueError(f"means {mean_a.shape}, {mean_b.shape} and covariances "
                     f"{covariance_a.shape}, {covariance_b.shape} do not agree; both sets "
                     "must be [dim] and [dim, dim] from the same feature layer")
  difference = mean_a - mean_b
  with np.errstate(all="ignore"):
    root = linalg.sqrtm(covariance_a @ covariance_b)
    if not np.isfinite(root).all():
      offset = np.eye(covariance_a.shape[0]) * eps
      root = linalg.sqrtm((covariance_a + offset) @ (covariance_b + offset))
  if not np.isfinite(root).all():
    raise ValueError("the square root of the covariance product is not finite even with "
                     f"eps={eps} added; the features are degenerate (e.g. all identical): "
                     "use more, and more varied, images")
  if np.iscomplexobj(root):
    imaginary = np.max(np.abs(np.diagonal(root).imag))
    if imaginary > 1e-3:
      raise ValueError(f"the covariance product's square root has an imaginary component "
                       f"{imaginary:.3g} on its diagonal; the statistics are ill-conditioned "
                       "(too few images for the feature dimension): use more images")
    root = root.real
  return float(difference @ difference + np.trace(covariance_a) + np.trace(covariance_b)
               - 2 * np.trace(root))


def fid(stats_a: FeatureStatistics, stats_b: FeatureStatistics, eps: float = 1e-6) -> float:
  """FID between two sets of feature statistics (vqjax.metrics.statistics)."""
  return frechet_distance(*mean_and_covariance(stats_a), *mean_and_covariance(stats_b), eps)
