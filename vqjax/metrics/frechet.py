"""The Fréchet distance between two Gaussians fitted to features: FID (Heusel et al. 2017).

    FID = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2))

method='sqrtm' (the default) takes the matrix square root with scipy.linalg.sqrtm, as
pytorch-fid does, with its fallback: if the product is near-singular and the root is not
finite, eps is added to both diagonals; an imaginary part on the diagonal above 1e-3 is an
error, below it is dropped. sqrtm of a 2048x2048 product takes a minute or more on 2 CPU
cores; method='eigh' gets the same trace from two symmetric eigendecompositions,
tr((S_a S_b)^(1/2)) = sum sqrt(eig(S_a^(1/2) S_b S_a^(1/2))), in seconds, and is more
accurate for singular covariances (fewer images than features).
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg

from vqjax.metrics.statistics import FeatureStatistics, mean_and_covariance


METHODS = ("sqrtm", "eigh")


def _trace_sqrt_product_eigh(covariance_a, covariance_b) -> float:
  """tr((S_a S_b)^(1/2)) for symmetric positive semi-definite S_a, S_b."""
  values, vectors = linalg.eigh(covariance_a)
  root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
  product = linalg.eigvalsh(root_a @ covariance_b @ root_a)
  return float(np.sum(np.sqrt(np.clip(product, 0, None))))


def _trace_sqrt_product_sqrtm(covariance_a, covariance_b, eps: float) -> float:
  """tr((S_a S_b)^(1/2)) with scipy.linalg.sqrtm and pytorch-fid's fallback."""
  with np.errstate(all="ignore"), warnings.catch_warnings():
    warnings.simplefilter("ignore", linalg.LinAlgWarning)  # handled by the fallback below
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
                       "(too few images for the feature dimension): use more images, or "
                       "method='eigh'")
    root = root.real
  return float(np.trace(root))


def frechet_distance(mean_a, covariance_a, mean_b, covariance_b, eps: float = 1e-6,
                     method: str = "sqrtm") -> float:
  """The Fréchet distance of N(mean_a, covariance_a) and N(mean_b, covariance_b), float64."""
  if method not in METHODS:
    raise ValueError(f"method {method!r} is not one of {METHODS}; 'sqrtm' is scipy's as in "
                     "pytorch-fid, 'eigh' the same trace faster")
  mean_a, mean_b = np.atleast_1d(np.float64(mean_a)), np.atleast_1d(np.float64(mean_b))
  covariance_a = np.atleast_2d(np.float64(covariance_a))
  covariance_b = np.atleast_2d(np.float64(covariance_b))
  if mean_a.shape != mean_b.shape or covariance_a.shape != covariance_b.shape or \
      covariance_a.shape != mean_a.shape * 2:
    raise ValueError(f"means {mean_a.shape}, {mean_b.shape} and covariances "
                     f"{covariance_a.shape}, {covariance_b.shape} do not agree; both sets "
                     "must be [dim] and [dim, dim] from the same feature layer")
  difference = mean_a - mean_b
  if method == "eigh":
    trace = _trace_sqrt_product_eigh(covariance_a, covariance_b)
  else:
    trace = _trace_sqrt_product_sqrtm(covariance_a, covariance_b, eps)
  return float(difference @ difference + np.trace(covariance_a) + np.trace(covariance_b)
               - 2 * trace)


def fid(stats_a: FeatureStatistics, stats_b: FeatureStatistics, eps: float = 1e-6,
        method: str = "sqrtm") -> float:
  """FID between two sets of feature statistics (vqjax.metrics.statistics); method 'sqrtm'
  (scipy, as pytorch-fid) or 'eigh' (the same value, seconds instead of minutes at 2048)."""
  return frechet_distance(*mean_and_covariance(stats_a), *mean_and_covariance(stats_b), eps,
                          method)
