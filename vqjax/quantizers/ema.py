"""Codebook learning by exponential moving averages (van den Oord et al. 2017, appendix).

    N_i <- g N_i + (1 - g) n_i               n_i: inputs assigned to code i
    m_i <- g m_i + (1 - g) sum_{z -> i} z
    e_i  = m_i / N~_i,   N~_i = (N_i + eps) / (sum_j N_j + K eps) * sum_j N_j   (Laplace)

Counts and sums are psummed over `axis_name` before the update, so every replica holds
the same codebook: the one a single device would compute on the concatenated batch.
"""
from __future__ import annotations

from collections.abc import Hashable

from typing import NamedTuple

import jax
import jax.numpy as jnp

from vqjax import collectives
from vqjax.quantizers import _validation as validation


class EMACodebookState(NamedTuple):
  codebook: jax.Array      # [K, dim] e_i
  cluster_size: jax.Array  # [K] N_i
  embed_sum: jax.Array     # [K, dim] m_i


def init(codebook: jax.Array) -> EMACodebookState:
  """EMA state around an initial codebook: N_i = 1 and m_i = e_i, so that e_i = m_i / N_i."""
  validation.check_codebook(codebook)
  codebook = jnp.asarray(codebook, jnp.float32)
  return EMACodebookState(codebook, jnp.ones(codebook.shape[0], jnp.float32), codebook)


def assignment_statistics(z: jax.Array, indices: jax.Array, codebook_size: int, *,
                          axis_name: Hashable | None = None) -> tuple[jax.Array, jax.Array]:
  """(n_i [K], sum of the z assigned to i [K, dim]) in float32, psummed over axis_name."""
  validation.check_indices(indices)
  flat = jax.lax.stop_gradient(z).reshape(-1, z.shape[-1]).astype(jnp.float32)
  flat_indices = indices.reshape(-1)
  if flat_indices.shape[0] != flat.shape[0]:
    raise ValueError(
        f"indices hold {flat_indices.shape[0]} entries but z holds {flat.shape[0]} vectors; "
        "pass the indices the quantizer returned for this z")
  counts = jnp.zeros(codebook_size, jnp.float32).at[flat_indices].add(1.0)
  sums = jnp.zeros((codebook_size, flat.shape[1]), jnp.float32).at[flat_indices].add(flat)
  counts, sums = collectives.psum((counts, sums), axis_name)
  return counts, sums


def update(state: EMACodebookState, z: jax.Array, indices: jax.Array, *,
           decay: float = 0.99, epsilon: float = 1e-5,
           axis_name: Hashable | None = None) -> EMACodebookState:
  """One EMA step from encoder outputs z [..., dim] and their code indices [...]."""
  if not 0.0 <= decay < 1.0:
    raise ValueError(f"decay is {decay}; it must be in [0, 1) (0.99 is usual)")
  codebook_size, dim = state.codebook.shape
  validation.check_vectors(z, dim)
  counts, sums = assignment_statistics(z, indices, codebook_size, axis_name=axis_name)
  cluster_size = decay * state.cluster_size + (1.0 - decay) * counts
  embed_sum = decay * state.embed_sum + (1.0 - decay) * sums
  return EMACodebookState(codebook_from_statistics(cluster_size, embed_sum, epsilon),
                          cluster_size, embed_sum)


def codebook_from_statistics(cluster_size: jax.Array, embed_sum: jax.Array,
                             epsilon: float = 1e-5) -> jax.Array:
  """e_i = m_i / N~_i with Laplace-smoothed counts, so unused codes never divide by zero."""
  total = jnp.sum(cluster_size)
  smoothed = (cluster_size + epsilon) / (total + cluster_size.shape[0] * epsilon) * total
  return embed_sum / smoothed[:, None]
