"""A stack of L codebooks [L, K, d], one per level (residual VQ) or group (grouped VQ).

Every function serves any stack, given the vectors each level quantized, [..., L, d]
(`residual.residual_inputs` or `grouped.split_groups`), and the indices [..., L]: code
lookup, EMA updates, usage, dead-code restarts and usage metrics, one codebook per level
through vmap, with the psum over axis_name inside. An index of -1 marks a dropped level
(quantizer dropout): it looks up a zero vector and leaves that level's state unchanged.
For example, one EMA step of a residual quantizer:

    out = residual.quantize(z, state.codebook)
    state = ema_update_levels(state, residual.residual_inputs(z, out.indices, state.codebook),
                              out.indices, axis_name=axis_name)
"""
from __future__ import annotations

import functools
from collections.abc import Hashable

import jax
import jax.numpy as jnp

from vqjax import collectives
from vqjax.quantizers import ema, metrics, restart
from vqjax.quantizers import _validation as validation
from vqjax.quantizers.vector_quantization import indices_to_codes


def check_codebook_stack(codebooks: jax.Array, name: str = "codebooks") -> None:
  """Checks that `codebooks` is a floating [levels, codebook_size, dim] array."""
  shape = getattr(codebooks, "shape", None)
  if shape is None or len(shape) != 3:
    raise ValueError(
        f"{name} must have rank 3, [levels, codebook_size, dim]; got shape {shape}")
  if shape[0] < 1:
    raise ValueError(f"{name} holds no codebooks; stack at least one [codebook_size, dim]")
  validation.check_codebook(jax.ShapeDtypeStruct(shape[1:], codebooks.dtype))


def _check_level_indices(indices, codebooks):
  validation.check_indices(indices)
  check_codebook_stack(codebooks)
  if indices.ndim < 1 or indices.shape[-1] != codebooks.shape[0]:
    raise ValueError(
        f"indices have shape {indices.shape} but there are {codebooks.shape[0]} codebooks; "
        f"pass indices of shape [..., {codebooks.shape[0]}] as the quantizer returned them")


def level_codes(indices: jax.Array, codebooks: jax.Array, *,
                metric: str = "l2") -> jax.Array:
  """Each level's code vector: [..., L] indices -> float32 [..., L, dim], zeros for -1."""
  _check_level_indices(indices, codebooks)
  codes = jax.vmap(functools.partial(indices_to_codes, metric=metric), in_axes=(-1, 0),
                   out_axes=-2)(jnp.maximum(indices, 0), codebooks)
  return jnp.where(indices[..., None] >= 0, codes, 0.0)


def levels_in_use(indices: jax.Array, *, axis_name: Hashable | None = None) -> jax.Array:
  """bool [L]: levels with no -1 index on any replica (not dropped anywhere)."""
  validation.check_indices(indices)
  kept = jnp.all(indices.reshape(-1, indices.shape[-1]) >= 0, axis=0)
  return collectives.pmin(kept.astype(jnp.int32), axis_name) > 0


def _keep_where(kept, new, old):
  """Per level: `new` where kept, else `old` (pytrees with a leading L axis)."""
  return jax.tree.map(lambda n, o: jnp.where(kept.reshape((-1,) + (1,) * (n.ndim - 1)), n, o),
                      new, old)


def ema_init_levels(codebooks: jax.Array) -> ema.EMACodebookState:
  """A stacked EMACodebookState (leaves with a leading L axis) around codebooks [L, K, d]."""
  check_codebook_stack(codebooks)
  return jax.vmap(ema.init)(codebooks)


def ema_update_levels(state: ema.EMACodebookState, inputs: jax.Array, indices: jax.Array, *,
                      decay: float = 0.99, epsilon: float = 1e-5,
                      axis_name: Hashable | None = None) -> ema.EMACodebookState:
  """`ema.update` for every level; a level dropped on any replica keeps its state."""
  _check_level_indices(indices, state.codebook)
  update = functools.partial(ema.update, decay=decay, epsilon=epsilon, axis_name=axis_name)
  new = jax.vmap(update, in_axes=(0, -2, -1))(state, inputs, jnp.maximum(indices, 0))
  return _keep_where(levels_in_use(indices, axis_name=axis_name), new, state)


def update_usage_levels(usage: jax.Array, indices: jax.Array, *, decay: float = 0.99,
                        axis_name: Hashable | None = None) -> jax.Array:
  """`restart.update_usage` for every level of usage [L, K]; dropped levels keep theirs."""
  validation.check_indices(indices)
  update = functools.partial(restart.update_usage, decay=decay, axis_name=axis_name)
  new = jax.vmap(update, in_axes=(0, -1))(usage, jnp.maximum(indices, 0))
  return _keep_where(levels_in_use(indices, axis_name=axis_name), new, usage)


def restart_dead_codes_levels(key: jax.Array, codebooks: jax.Array, usage: jax.Array,
                              inputs: jax.Array, *, threshold: float,
                              axis_name: Hashable | None = None
                              ) -> tuple[jax.Array, jax.Array]:
  """`restart.restart_dead_codes` for every level, each from its own inputs.

  Returns (codebooks [L, K, d], dead [L, K]).
  """
  check_codebook_stack(codebooks)
  restart_level = functools.partial(restart.restart_dead_codes, threshold=threshold,
                                    axis_name=axis_name)
  return jax.vmap(restart_level, in_axes=(0, 0, 0, -2))(
      jax.random.split(key, codebooks.shape[0]), codebooks, usage, inputs)


def restart_dead_codes_ema_levels(key: jax.Array, state: ema.EMACodebookState,
                                  inputs: jax.Array, *, threshold: float,
                                  axis_name: Hashable | None = None
                                  ) -> tuple[ema.EMACodebookState, jax.Array]:
  """`restart.restart_dead_codes_ema` for every level. Returns (state, dead [L, K])."""
  check_codebook_stack(state.codebook)
  restart_level = functools.partial(restart.restart_dead_codes_ema, threshold=threshold,
                                    axis_name=axis_name)
  return jax.vmap(restart_level, in_axes=(0, 0, -2))(
      jax.random.split(key, state.codebook.shape[0]), state, inputs)


def level_metrics(indices: jax.Array, codebook_size: int, *,
                  axis_name: Hashable | None = None) -> dict[str, jax.Array]:
  """`metrics.codebook_metrics` of every level over the global batch: a dict of [L] arrays.

  Entries of -1 (dropped levels) are not counted: a level dropped everywhere reports
  perplexity 1, no codes used and all codes dead.
  """
  validation.check_indices(indices)
  validation.check_codebook_size(codebook_size)

  def one_level(level_indices):
    # -1 goes to an extra bin that is then left out.
    counts = metrics.code_counts(jnp.where(level_indices < 0, codebook_size, level_indices),
                                 codebook_size + 1, axis_name=axis_name)
    return metrics.metrics_from_counts(counts[:codebook_size])

  return jax.vmap(one_level, in_axes=-1)(indices)
