"""One pass of evaluation over a split: reconstruction error and codebook usage.

    mse             mean squared error per pixel, over all valid examples
    psnr            mean over images of 10 log10(peak^2 / image MSE), peak = high - low
                    of the value range
    normalized_mse  mse / data variance (the training split's pixel variance)
    lpips           mean LPIPS distance of reconstructions to inputs (when eval_fn gives it)
    <prefix>perplexity, <prefix>codes_used_fraction, <prefix>dead_codes
                    from the code counts of the whole split, per codebook (prefixes ''
                    or 'top/' and 'bottom/'; residual codebooks add '/<level>')
"""
from __future__ import annotations

from typing import Callable, Iterable, NamedTuple

import jax
import numpy as np

from vqjax.quantizers import metrics
from vqjax.train.state import TrainState
from vqjax.runner.summaries import Heartbeat, flatten_metrics

_COUNTS = "code_counts/"


class Evaluation(NamedTuple):
  metrics: dict[str, float]
  code_counts: dict[str, np.ndarray]  # prefix -> [K] or [levels, K]
  inputs: np.ndarray           # the first valid examples, [N, H, W, C]
  reconstructions: np.ndarray  # and their reconstructions


def evaluate(eval_fn: Callable, state: TrainState, batches: Iterable[dict], *,
             data_variance: float, grid_examples: int = 16,
             progress_every_seconds: float = 30.0) -> Evaluation:
  """Runs eval_fn (vqjax.train.parallel.eval_step) over every batch and sums up; logs
  the examples done every progress_every_seconds."""
  totals, inputs, reconstructions = None, None, None
  heartbeat = Heartbeat("evaluating", every_seconds=progress_every_seconds)
  for batch in batches:
    sums, reconstruction = eval_fn(state, batch)
    sums = jax.tree.map(lambda x: np.asarray(x, np.float64), jax.device_get(sums))
    totals = sums if totals is None else jax.tree.map(np.add, totals, sums)
    heartbeat.tick(int(totals["count"]))
    if inputs is None:
      valid = np.asarray(batch["mask"]).reshape(-1)
      image_shape = batch["image"].shape[2:]
      inputs = np.asarray(batch["image"]).reshape(-1, *image_shape)[valid][:grid_examples]
      reconstructions = np.asarray(reconstruction).reshape(-1, *image_shape)[valid][:grid_examples]
  if totals is None or totals["count"] == 0:
    raise ValueError("the evaluation split yielded no examples; pick a split with examples")
  count = float(totals["count"])  # plain floats: one batch leaves 0-d arrays, not JSON
  mse = float(totals["squared_error"]) / count
  results = {"examples": count, "mse": mse, "psnr": float(totals["psnr"]) / count,
             "normalized_mse": mse / data_variance}
  if "lpips" in totals:
    results["lpips"] = float(totals["lpips"]) / count
  code_counts = {name[len(_COUNTS):]: value for name, value in totals.items()
                 if name.startswith(_COUNTS)}
  for prefix, counts in code_counts.items():
    results.update(flatten_metrics({prefix + name: value
                                    for name, value in usage_metrics(counts).items()}))
  return Evaluation(results, code_counts, inputs, reconstructions)


def usage_metrics(counts: np.ndarray) -> dict[str, np.ndarray]:
  """perplexity, codes_used_fraction and dead_codes from counts [K] or [levels, K]."""
  usage = metrics.metrics_from_counts
  return jax.device_get(usage(counts) if np.ndim(counts) == 1 else jax.vmap(usage)(counts))
