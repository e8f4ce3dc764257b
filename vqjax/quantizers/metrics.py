"""Codebook usage over the global batch: counts, perplexity, used and dead codes."""
from __future__ import annotations

from collections.abc import Hashable

import jax
import jax.numpy as jnp

from vqjax import collectives
from vqjax.quantizers import _validation as validation


def code_counts(indices: jax.Array, codebook_size: int, *,
                axis_name: Hashable | None = None) -> jax.Array:
  """How often each code appears in `indices` [...], summed over `axis_name`; float32 [K]."""
  validation.check_indices(indices)
  validation.check_codebook_size(codebook_size)
  counts = jnp.zeros(codebook_size, jnp.float32).at[indices.reshape(-1)].add(1.0)
  return collectives.psum(counts, axis_name)


def metrics_from_counts(counts: jax.Array) -> dict[str, jax.Array]:
  """perplexity, codes_used_fraction and dead_codes (codes unused in the batch) from counts [K]."""
  probs = counts / jnp.maximum(jnp.sum(counts), 1.0)
  entropy = -jnp.sum(jnp.where(probs > 0, probs * jnp.log(jnp.where(probs > 0, probs, 1.0)), 0.0))
  used = counts > 0
  return {
      "perplexity": jnp.exp(entropy),
      "codes_used_fraction": jnp.mean(used.astype(jnp.float32)),
      "dead_codes": jnp.sum(~used).astype(jnp.int32),
  }


def codebook_metrics(indices: jax.Array, codebook_size: int, *,
                     axis_name: Hashable | None = None) -> dict[str, jax.Array]:
  """Usage metrics of one codebook over the global batch (all devices on `axis_name`).

  Returns a dict: `perplexity` (exp of the entropy of code frequencies; K when all codes
  are equally used, 1 when one code takes everything), `codes_used_fraction`, and
  `dead_codes` (codes no input of the global batch was assigned to).
  """
  return metrics_from_counts(code_counts(indices, codebook_size, axis_name=axis_name))
