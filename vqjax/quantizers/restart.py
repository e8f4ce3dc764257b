"""Dead-code restart: codes whose usage falls below a threshold are re-seeded from the
current encoder outputs.

Replacement rows are drawn with one key shared by all replicas from the global batch
(the concatenation over `axis_name`); each device contributes the rows it holds and a
psum assembles them, so every replica restarts the same codes with the same vectors
without gathering the whole batch.
"""
from __future__ import annotations

from collections.abc import Hashable

import jax
import jax.numpy as jnp

from vqjax import collectives
from vqjax.quantizers import ema, metrics
from vqjax.quantizers import _validation as validation


def update_usage(usage: jax.Array, indices: jax.Array, *, decay: float = 0.99,
                 axis_name: Hashable | None = None) -> jax.Array:
  """Exponential moving average of per-code counts over global batches; float32 [K]."""
  counts = metrics.code_counts(indices, usage.shape[0], axis_name=axis_name)
  return decay * usage + (1.0 - decay) * counts


def sample_global_rows(key: jax.Array, z: jax.Array, count: int, *,
                       axis_name: Hashable | None = None) -> jax.Array:
  """`count` rows drawn uniformly (with replacement) from the global batch of z [..., dim].

  Identical on every replica and equal to drawing from the concatenated batch on one device.
  """
  flat = jax.lax.stop_gradient(z).reshape(-1, z.shape[-1])
  local_count = flat.shape[0]
  if axis_name is None:
    devices, offset = 1, 0
  else:
    devices = jax.lax.psum(1, axis_name)
    offset = jax.lax.axis_index(axis_name) * local_count
  picks = jax.random.randint(key, (count,), 0, local_count * devices) - offset
  owned = (picks >= 0) & (picks < local_count)
  rows = jnp.where(owned[:, None], flat[jnp.clip(picks, 0, local_count - 1)], 0)
  return collectives.psum(rows, axis_name)


def restart_dead_codes(key: jax.Array, codebook: jax.Array, usage: jax.Array, z: jax.Array,
                       *, threshold: float,
                       axis_name: Hashable | None = None) -> tuple[jax.Array, jax.Array]:
  """Replaces codes with usage < threshold by encoder outputs from the global batch.

  Returns (codebook, dead): the new [K, dim] codebook and the bool [K] mask of restarted
  codes. Reset the usage of restarted codes (e.g. to the threshold) so that they get
  time to be used before they count as dead again.
  """
  validation.check_codebook(codebook)
  validation.check_vectors(z, codebook.shape[1])
  dead = usage < threshold
  fresh = sample_global_rows(key, z, codebook.shape[0], axis_name=axis_name)
  return jnp.where(dead[:, None], fresh.astype(codebook.dtype), codebook), dead


def restart_dead_codes_ema(key: jax.Array, state: ema.EMACodebookState, z: jax.Array, *,
                           threshold: float, axis_name: Hashable | None = None
                           ) -> tuple[ema.EMACodebookState, jax.Array]:
  """Dead-code restart for an EMA codebook, whose usage is its count N_i.

  A restarted code gets N_i = threshold and m_i = N_i e_i, consistent statistics for its
  new vector.
  """
  codebook, dead = restart_dead_codes(key, state.codebook, state.cluster_size, z,
                                      threshold=threshold, axis_name=axis_name)
  cluster_size = jnp.where(dead, jnp.maximum(threshold, 1e-3), state.cluster_size)
  embed_sum = jnp.where(dead[:, None], codebook * cluster_size[:, None], state.embed_sum)
  return ema.EMACodebookState(codebook, cluster_size, embed_sum), dead
