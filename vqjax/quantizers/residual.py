"""Residual VQ (SoundStream; vector-quantize-pytorch's ResidualVQ), as pure functions.

A stack of Q codebooks [Q, K, dim]; level q quantizes what the levels before it left over:

    r_0 = z,   e_q = nearest code to r_q in codebook q,   r_{q+1} = r_q - sg(e_q)
    quantized = z + sg(sum_q e_q - z)     one straight-through (or rotation) estimate of the sum

Each level's losses are those of `vector_quantization.quantize` on its residual; the
output's codebook_loss and commitment_loss are their sums over levels. Quantizer dropout
keeps the first n levels, n drawn uniformly from [1, Q] once per call (not per example):
levels >= n add nothing, have zero loss and report index -1.

The family's verbs: `quantize` (a `VQOutput` with indices [..., Q]), `indices_to_codes`,
`codebook_metrics` (one entry per level). EMA updates, usage and restarts of the stack are
in `vqjax.quantizers.levels`, given `residual_inputs`.
"""
from __future__ import annotations

import functools
from collections.abc import Hashable

import jax
import jax.numpy as jnp

from vqjax.quantizers import initialization, search, vector_quantization
from vqjax.quantizers import _validation as validation
from vqjax.quantizers.levels import check_codebook_stack, level_codes
from vqjax.quantizers.levels import level_metrics as codebook_metrics  # the metrics verb
from vqjax.quantizers.vector_quantization import (ESTIMATORS, VQOutput, rotation_trick,
                                                  straight_through)

sg = jax.lax.stop_gradient


def active_level_mask(levels: int, *, key: jax.Array | None = None,
                      dropout_levels: bool = False,
                      active_levels: int | jax.Array | None = None) -> jax.Array:
  """bool [levels], True for the levels in use: all, the first `active_levels`, or with
  `dropout_levels` the first n for n drawn uniformly from [1, levels] with `key`."""
  if dropout_levels and active_levels is not None:
    raise ValueError("pass dropout_levels=True (a random number of levels) or active_levels "
                     "(a fixed number), not both")
  if dropout_levels:
    if key is None:
      raise ValueError("quantizer dropout draws the number of levels at random: pass "
                       "key=jax.random.key(...), or set dropout_levels=False")
    count = jax.random.randint(key, (), 1, levels + 1)
  elif active_levels is None:
    count = levels
  else:
    if isinstance(active_levels, int) and not 1 <= active_levels <= levels:
      raise ValueError(f"active_levels is {active_levels}; it must be in [1, {levels}]")
    count = active_levels
  return jnp.arange(levels) < count


def quantize(z: jax.Array, codebooks: jax.Array, *, beta: float = 0.25, metric: str = "l2",
             estimator: str = "straight_through", key: jax.Array | None = None,
             dropout_levels: bool = False, active_levels: int | jax.Array | None = None,
             block_size: int = 256) -> VQOutput:
  """Residual VQ of z [..., dim] with codebooks [Q, K, dim]; indices [..., Q].

  Losses are summed over levels. With `dropout_levels` (and a `key`) or `active_levels`
  (an int, or a traced int32 scalar, in [1, Q]) only the first levels are used; the
  others report index -1. Under pmap, give every replica the same key so that all of them
  drop the same levels. Residuals are float32, also for bfloat16 z.
  """
  check_codebook_stack(codebooks)
  validation.check_vectors(z, codebooks.shape[2])
  validation.check_choice(estimator, ESTIMATORS, "estimator")
  validation.check_choice(metric, search.METRICS, "metric")
  active = active_level_mask(codebooks.shape[0], key=key, dropout_levels=dropout_levels,
                             active_levels=active_levels)
  return _quantize(z, codebooks, active, beta=beta, metric=metric, estimator=estimator,
                   block_size=block_size)


# Jitted so that eager calls (tests, notebooks) trace and compile the scan once.
@functools.partial(jax.jit, static_argnames=("beta", "metric", "estimator", "block_size"))
def _quantize(z, codebooks, active, *, beta, metric, estimator, block_size):
  def level(carry, inputs):
    residual, total = carry
    codebook, keep = inputs
    out = vector_quantization.quantize(residual, codebook, beta=beta, metric=metric,
                                       block_size=block_size)
    codes = vector_quantization.indices_to_codes(out.indices, codebook, metric=metric)
    codes = jnp.where(keep, sg(codes), 0.0)
    losses = (jnp.where(keep, out.codebook_loss, 0.0), jnp.where(keep, out.commitment_loss, 0.0))
    return (residual - codes, total + codes), (jnp.where(keep, out.indices, -1), losses)

  start = z.astype(jnp.float32)
  (_, total), (indices, (codebook_losses, commitment_losses)) = jax.lax.scan(
      level, (start, jnp.zeros_like(start)), (codebooks, active))
  estimate = straight_through if estimator == "straight_through" else rotation_trick
  return VQOutput(estimate(z, total.astype(z.dtype)), jnp.moveaxis(indices, 0, -1),
                  jnp.sum(codebook_losses), jnp.sum(commitment_losses))


def indices_to_codes(indices: jax.Array, codebooks: jax.Array, *,
                     metric: str = "l2") -> jax.Array:
  """Indices [..., Q] -> the sum of the levels' codes, float32 [..., dim]; -1 levels add 0."""
  return jnp.sum(level_codes(indices, codebooks, metric=metric), axis=-2)


def residual_inputs(z: jax.Array, indices: jax.Array, codebooks: jax.Array, *,
                    metric: str = "l2") -> jax.Array:
  """The residual each level quantized, float32 [..., Q, dim] (no gradient)."""
  codes = level_codes(indices, codebooks, metric=metric)
  before = jnp.cumsum(codes, axis=-2) - codes
  return sg(z.astype(jnp.float32)[..., None, :] - before)


def kmeans_codebooks(key: jax.Array, z: jax.Array, levels: int, codebook_size: int, *,
                     iterations: int = 10, axis_name: Hashable | None = None) -> jax.Array:
  """[levels, K, dim] codebooks by k-means, level by level, on the residuals of z [..., dim]."""
  if levels < 1:
    raise ValueError(f"levels is {levels}; residual VQ needs at least one level")

  def fit_level(residual, level_key):
    codebook = initialization.kmeans_codebook(level_key, residual, codebook_size,
                                              iterations=iterations, axis_name=axis_name)
    indices = search.nearest_code_indices(residual, codebook)
    return residual - vector_quantization.indices_to_codes(indices, codebook), codebook

  # A scan compiles k-means once for all levels.
  _, codebooks = jax.lax.scan(fit_level, sg(z).astype(jnp.float32),
                              jax.random.split(key, levels))
  return codebooks
