"""The Inception Score (Salimans et al. 2016) and the Kernel Inception Distance (Binkowski et
al. 2018), from features held on the host (float64).

inception_score: softmax of the classifier's logits; the images are cut into `splits`
contiguous parts (as the original TF code does, without shuffling); each part scores
exp(mean KL(p(y|x) || p(y))); returns the mean and standard deviation over the parts.
kernel_inception_distance: the unbiased MMD^2 with the cubic polynomial kernel
k(x, y) = (x.y / dim + 1)^3 on `num_subsets` random subsets of `subset_size` features from
each set (torch-fidelity's and torchmetrics' defaults: 100 subsets of 1000); returns the mean
and standard deviation (ddof 0) over the subsets.
"""
from __future__ import annotations

import numpy as np
from scipy import special


def _check_matrix(name: str, values) -> np.ndarray:
  values = np.asarray(values, np.float64)
  if values.ndim != 2:
    raise ValueError(f"{name} have shape {values.shape}; expected [images, dim]")
  if not np.isfinite(values).all():
    raise ValueError(f"{name} hold NaN or infinity; check the images fed to the network")
  return values


def inception_score(logits, splits: int = 10) -> tuple[float, float]:
  """(mean, std) of the Inception Score over `splits` parts of logits [N, classes]."""
  logits = _check_matrix("logits", logits)
  if isinstance(splits, bool) or not isinstance(splits, int) or splits < 1:
    raise ValueError(f"splits is {splits!r}; it must be a positive int (10 as is standard)")
  if logits.shape[0] < splits:
    raise ValueError(f"{logits.shape[0]} images cannot be cut into {splits} splits; pass "
                     f"at least {splits} images (papers use 50,000) or fewer splits")
  log_probabilities = special.log_softmax(logits, axis=1)
  scores = []
  for part in np.array_split(log_probabilities, splits):
    log_marginal = special.logsumexp(part, axis=0) - np.log(part.shape[0])
    kl = np.sum(np.exp(part) * (part - log_marginal), axis=1)
    scores.append(np.exp(kl.mean()))
  return float(np.mean(scores)), float(np.std(scores))


def _polynomial_mmd(a: np.ndarray, b: np.ndarray) -> float:
  """Unbiased MMD^2 of two equal-size sets with k(x, y) = (x.y / dim + 1)^3."""
  kernel = lambda x, y: (x @ y.T / a.shape[1] + 1) ** 3
  k_aa, k_bb, k_ab = kernel(a, a), kernel(b, b), kernel(a, b)
  m = a.shape[0]
  within = (k_aa.sum() - np.trace(k_aa) + k_bb.sum() - np.trace(k_bb)) / (m * (m - 1))
  return float(within - 2 * k_ab.sum() / m ** 2)


def kernel_inception_distance(features_a, features_b, *, subset_size: int = 1000,
                              num_subsets: int = 100, seed: int = 0) -> tuple[float, float]:
  """(mean, std) of KID over random subsets of two feature sets [N_a, dim], [N_b, dim]."""
  features_a = _check_matrix("features_a", features_a)
  features_b = _check_matrix("features_b", features_b)
  if features_a.shape[1] != features_b.shape[1]:
    raise ValueError(f"features of dims {features_a.shape[1]} and {features_b.shape[1]}; "
                     "both sets must come from the same feature layer")
  smaller = min(features_a.shape[0], features_b.shape[0])
  if isinstance(subset_size, bool) or not isinstance(subset_size, int) or subset_size < 2:
    raise ValueError(f"subset_size is {subset_size!r}; it must be an int >= 2")
  if subset_size > smaller:
    raise ValueError(f"subset_size {subset_size} is larger than the smaller set "
                     f"({smaller} images); pass subset_size <= {smaller}, e.g. "
                     f"subset_size={min(1000, smaller)}")
  rng = np.random.default_rng(seed)
  values = [_polynomial_mmd(features_a[rng.choice(features_a.shape[0], subset_size, False)],
                            features_b[rng.choice(features_b.shape[0], subset_size, False)])
            for _ in range(num_subsets)]
  return float(np.mean(values)), float(np.std(values))
