"""Codebook initialization: random, or k-means from a batch of encoder outputs.

k-means gathers the batch from every device on `axis_name` first, so every replica runs
the same computation on the same data and holds the same codebook (the one a single
device would get from the concatenated batch).
"""
from __future__ import annotations

from collections.abc import Hashable

import jax
import jax.numpy as jnp

from vqjax.quantizers import ema, search
from vqjax.quantizers import _validation as validation


def random_codebook(key: jax.Array, codebook_size: int, dim: int, *,
                    scale: float | None = None, dtype: jnp.dtype = jnp.float32) -> jax.Array:
  """Uniform codes in [-scale, scale] (default 1/codebook_size, as in the VQ-VAE code)."""
  validation.check_codebook_size(codebook_size)
  if dim < 1:
    raise ValueError(f"dim is {dim}; code vectors need at least one dimension")
  scale = 1.0 / codebook_size if scale is None else scale
  return jax.random.uniform(key, (codebook_size, dim), dtype, -scale, scale)


def kmeans_plus_plus(key: jax.Array, points: jax.Array, codebook_size: int) -> jax.Array:
  """k-means++ seeding of `codebook_size` centres from points [N, dim] (float32)."""
  count = points.shape[0]
  first_key, rest_key = jax.random.split(key)
  first = points[jax.random.randint(first_key, (), 0, count)]
  centres = jnp.zeros((codebook_size, points.shape[1]), jnp.float32).at[0].set(first)
  nearest = jnp.sum(jnp.square(points - first), axis=-1)

  def add_centre(i, carry):
    centres, nearest = carry
    # Sample proportionally to the squared distance to the nearest chosen centre.
    logits = jnp.where(nearest > 0, jnp.log(jnp.where(nearest > 0, nearest, 1.0)), -jnp.inf)
    logits = jnp.where(jnp.any(nearest > 0), logits, 0.0)  # all points covered: uniform
    chosen = points[jax.random.categorical(jax.random.fold_in(rest_key, i), logits)]
    nearest = jnp.minimum(nearest, jnp.sum(jnp.square(points - chosen), axis=-1))
    return centres.at[i].set(chosen), nearest

  centres, _ = jax.lax.fori_loop(1, codebook_size, add_centre, (centres, nearest))
  return centres


def kmeans_codebook(key: jax.Array, z: jax.Array, codebook_size: int, *,
                    iterations: int = 10, axis_name: Hashable | None = None) -> jax.Array:
  """A [codebook_size, dim] codebook by k-means++ seeding and `iterations` Lloyd steps.

  z [..., dim] is a batch of encoder outputs (this device's share under pmap). Jit-safe:
  fixed iteration count; empty clusters keep their previous centre.
  """
  validation.check_vectors(z)
  validation.check_codebook_size(codebook_size)
  if iterations < 0:
    raise ValueError(f"iterations is {iterations}; it must be >= 0")
  points = jax.lax.stop_gradient(z).reshape(-1, z.shape[-1]).astype(jnp.float32)
  if axis_name is not None:
    points = jax.lax.all_gather(points, axis_name, tiled=True)
  if points.shape[0] < codebook_size:
    raise ValueError(
        f"k-means needs at least codebook_size={codebook_size} vectors but the batch holds "
        f"{points.shape[0]}; pass a larger batch of encoder outputs or a smaller codebook")
  centres = kmeans_plus_plus(key, points, codebook_size)

  def lloyd_step(_, centres):
    indices = search.nearest_code_indices(points, centres)
    counts, sums = ema.assignment_statistics(points, indices, codebook_size)
    return jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1.0)[:, None], centres)

  return jax.lax.fori_loop(0, iterations, lloyd_step, centres)
