"""Grouped (product) VQ, as pure functions.

dim is split into G equal groups, each quantized by its own codebook [G, K, dim / G], and
the results are concatenated. The losses are averaged over groups, so they equal the
losses of plain VQ over the concatenated vector.

The family's verbs: `quantize` (a `VQOutput` with indices [..., G]), `indices_to_codes`,
`codebook_metrics` (one entry per group). EMA updates, usage and restarts of the stack
are in `vqjax.quantizers.levels`, given `split_groups`.
"""
from __future__ import annotations

import functools
from collections.abc import Hashable

import jax
import jax.numpy as jnp

from vqjax.quantizers import initialization, vector_quantization
from vqjax.quantizers import _validation as validation
from vqjax.quantizers.levels import check_codebook_stack, level_codes
from vqjax.quantizers.levels import level_metrics as codebook_metrics  # the metrics verb
from vqjax.quantizers.vector_quantization import VQOutput


def check_groups(dim: int, groups: int) -> None:
  if groups < 1:
    raise ValueError(f"groups is {groups}; it must be at least 1")
  if dim % groups:
    divisors = [g for g in range(1, dim + 1) if dim % g == 0]
    dims = sorted({d for d in (dim // groups * groups, -(-dim // groups) * groups) if d > 0})
    raise ValueError(
        f"dim {dim} is not divisible by groups={groups}; use groups in {divisors} "
        f"or a dim of {' or '.join(map(str, dims))}")


def split_groups(z: jax.Array, groups: int) -> jax.Array:
  """z [..., dim] -> [..., groups, dim / groups]."""
  validation.check_vectors(z)
  check_groups(z.shape[-1], groups)
  return z.reshape(*z.shape[:-1], groups, z.shape[-1] // groups)


def quantize(z: jax.Array, codebooks: jax.Array, *, beta: float = 0.25, metric: str = "l2",
             estimator: str = "straight_through", block_size: int = 256) -> VQOutput:
  """Product VQ of z [..., G * d] with codebooks [G, K, d]; indices [..., G].

  Each group is quantized (and its estimator applied) on its own; losses are averaged
  over groups.
  """
  check_codebook_stack(codebooks)
  groups, _, group_dim = codebooks.shape
  validation.check_vectors(z, groups * group_dim)
  return _quantize(z, codebooks, beta=beta, metric=metric, estimator=estimator,
                   block_size=block_size)


@functools.partial(jax.jit, static_argnames=("beta", "metric", "estimator", "block_size"))
def _quantize(z, codebooks, *, beta, metric, estimator, block_size):
  quantize_group = functools.partial(vector_quantization.quantize, beta=beta, metric=metric,
                                     estimator=estimator, block_size=block_size)
  out = jax.vmap(quantize_group, in_axes=(-2, 0), out_axes=VQOutput(-2, -1, 0, 0))(
      split_groups(z, codebooks.shape[0]), codebooks)
  return VQOutput(out.quantized.reshape(z.shape), out.indices, jnp.mean(out.codebook_loss),
                  jnp.mean(out.commitment_loss))


def indices_to_codes(indices: jax.Array, codebooks: jax.Array, *,
                     metric: str = "l2") -> jax.Array:
  """Indices [..., G] -> the groups' codes concatenated, float32 [..., G * d]."""
  codes = level_codes(indices, codebooks, metric=metric)
  return codes.reshape(*codes.shape[:-2], -1)


def kmeans_codebooks(key: jax.Array, z: jax.Array, groups: int, codebook_size: int, *,
                     iterations: int = 10, axis_name: Hashable | None = None) -> jax.Array:
  """[groups, K, dim / groups] codebooks by k-means on each group of z [..., dim]."""
  kmeans = functools.partial(initialization.kmeans_codebook, codebook_size=codebook_size,
                             iterations=iterations, axis_name=axis_name)
  return jax.vmap(kmeans, in_axes=(0, -2))(jax.random.split(key, groups),
                                           split_groups(z, groups))
