"""Multi-codebook quantizers: residual VQ and grouped (product) VQ, as pure functions.

Residual VQ (SoundStream; vector-quantize-pytorch's ResidualVQ) stacks Q codebooks
[Q, K, dim]; level q quantizes what the levels before it left over:

    r_0 = z,   e_q = nearest code to r_q in codebook q,   r_{q+1} = r_q - sg(e_q)
    quantized = z + sg(sum_q e_q - z)     one straight-through (or rotation) estimate of the sum

Each level's losses are those of `quantize` on its residual; the outputs' codebook_loss
and commitment_loss are their sums over levels. Quantizer dropout keeps the first n
levels, n drawn uniformly from [1, Q] once per call (not per example): levels >= n add
nothing, have zero loss and report index -1.

Grouped (product) VQ splits dim into G equal groups, each quantized by its own codebook
[G, K, dim / G], and concatenates the results. Its losses are averaged over groups, so
they equal the losses of plain VQ over the concatenated vector.

Both return `VQOutput` with indices [..., Q] or [..., G]. The `*_levels` functions serve
any stack of L codebooks, given the vectors each level quantized, [..., L, level_dim]
(`residual_inputs` or `split_groups`), and the indices [..., L]: EMA updates, usage,
dead-code restarts and usage metrics, one codebook per level through vmap, with the psum
over axis_name inside. For example, one EMA step of a residual quantizer:

    out = residual_quantize(z, state.codebook)
    state = ema_update_levels(state, residual_inputs(z, out.indices, state.codebook),
                              out.indices, axis_name=axis_name)
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from vqjax.quantizers import ema, initialization, metrics, restart, search, validation
from vqjax.quantizers.vector_quantization import (ESTIMATORS, VQOutput, lookup, quantize,
                                                  rotation_trick, straight_through)

sg = jax.lax.stop_gradient


def check_codebook_stack(codebooks, name: str = "codebooks") -> None:
  """Checks that `codebooks` is a floating [levels, codebook_size, dim] array."""
  shape = getattr(codebooks, "shape", None)
  if shape is None or len(shape) != 3:
    raise ValueError(
        f"{name} must have rank 3, [levels, codebook_size, dim]; got shape {shape}")
  if shape[0] < 1:
    raise ValueError(f"{name} holds no codebooks; stack at least one [codebook_size, dim]")
  validation.check_codebook(jax.ShapeDtypeStruct(shape[1:], codebooks.dtype))


def check_groups(dim: int, groups: int) -> None:
  if groups < 1:
    raise ValueError(f"groups is {groups}; it must be at least 1")
  if dim % groups:
    divisors = [g for g in range(1, dim + 1) if dim % g == 0]
    dims = sorted({d for d in (dim // groups * groups, -(-dim // groups) * groups) if d > 0})
    raise ValueError(
        f"dim {dim} is not divisible by groups={groups}; use groups in {divisors} "
        f"or a dim of {' or '.join(map(str, dims))}")


def _check_level_indices(indices, codebooks):
  validation.check_indices(indices)
  check_codebook_stack(codebooks)
  if indices.ndim < 1 or indices.shape[-1] != codebooks.shape[0]:
    raise ValueError(
        f"indices have shape {indices.shape} but there are {codebooks.shape[0]} codebooks; "
        f"pass indices of shape [..., {codebooks.shape[0]}] as the quantizer returned them")


def level_codes(indices, codebooks, *, metric: str = "l2"):
  """Each level's code vector: [..., L] indices -> float32 [..., L, dim], zeros for -1."""
  _check_level_indices(indices, codebooks)
  codes = jax.vmap(functools.partial(lookup, metric=metric), in_axes=(-1, 0), out_axes=-2)(
      jnp.maximum(indices, 0), codebooks)
  return jnp.where(indices[..., None] >= 0, codes, 0.0)


# Residual VQ.

def active_level_mask(levels: int, *, key=None, dropout_levels: bool = False,
                      active_levels=None):
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


def residual_quantize(z, codebooks, *, beta: float = 0.25, metric: str = "l2",
                      estimator: str = "straight_through", key=None,
                      dropout_levels: bool = False, active_levels=None,
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
  return _residual_quantize(z, codebooks, active, beta=beta, metric=metric,
                            estimator=estimator, block_size=block_size)


# Jitted so that eager calls (tests, notebooks) trace and compile the scan once.
@functools.partial(jax.jit, static_argnames=("beta", "metric", "estimator", "block_size"))
def _residual_quantize(z, codebooks, active, *, beta, metric, estimator, block_size):
  def level(carry, inputs):
    residual, total = carry
    codebook, keep = inputs
    out = quantize(residual, codebook, beta=beta, metric=metric, block_size=block_size)
    codes = jnp.where(keep, sg(lookup(out.indices, codebook, metric=metric)), 0.0)
    losses = (jnp.where(keep, out.codebook_loss, 0.0), jnp.where(keep, out.commitment_loss, 0.0))
    return (residual - codes, total + codes), (jnp.where(keep, out.indices, -1), losses)

  start = z.astype(jnp.float32)
  (_, total), (indices, (codebook_losses, commitment_losses)) = jax.lax.scan(
      level, (start, jnp.zeros_like(start)), (codebooks, active))
  estimate = straight_through if estimator == "straight_through" else rotation_trick
  return VQOutput(estimate(z, total.astype(z.dtype)), jnp.moveaxis(indices, 0, -1),
                  jnp.sum(codebook_losses), jnp.sum(commitment_losses))


def residual_lookup(indices, codebooks, *, metric: str = "l2"):
  """Indices [..., Q] -> the sum of the levels' codes, float32 [..., dim]; -1 levels add 0."""
  return jnp.sum(level_codes(indices, codebooks, metric=metric), axis=-2)


def residual_inputs(z, indices, codebooks, *, metric: str = "l2"):
  """The residual each level quantized, float32 [..., Q, dim] (no gradient)."""
  codes = level_codes(indices, codebooks, metric=metric)
  before = jnp.cumsum(codes, axis=-2) - codes
  return sg(z.astype(jnp.float32)[..., None, :] - before)


def residual_kmeans_codebooks(key, z, levels: int, codebook_size: int, *,
                              iterations: int = 10, axis_name=None):
  """[levels, K, dim] codebooks by k-means, level by level, on the residuals of z [..., dim]."""
  if levels < 1:
    raise ValueError(f"levels is {levels}; residual VQ needs at least one level")

  def fit_level(residual, level_key):
    codebook = initialization.kmeans_codebook(level_key, residual, codebook_size,
                                              iterations=iterations, axis_name=axis_name)
    codes = lookup(search.nearest_code_indices(residual, codebook), codebook)
    return residual - codes, codebook

  # A scan compiles k-means once for all levels.
  _, codebooks = jax.lax.scan(fit_level, sg(z).astype(jnp.float32),
                              jax.random.split(key, levels))
  return codebooks


# Grouped (product) VQ.

def split_groups(z, groups: int):
  """z [..., dim] -> [..., groups, dim / groups]."""
  validation.check_vectors(z)
  check_groups(z.shape[-1], groups)
  return z.reshape(*z.shape[:-1], groups, z.shape[-1] // groups)


def grouped_quantize(z, codebooks, *, beta: float = 0.25, metric: str = "l2",
                     estimator: str = "straight_through", block_size: int = 256) -> VQOutput:
  """Product VQ of z [..., G * d] with codebooks [G, K, d]; indices [..., G].

  Each group is quantized (and its estimator applied) on its own; losses are averaged
  over groups.
  """
  check_codebook_stack(codebooks)
  groups, _, group_dim = codebooks.shape
  validation.check_vectors(z, groups * group_dim)
  return _grouped_quantize(z, codebooks, beta=beta, metric=metric, estimator=estimator,
                           block_size=block_size)


@functools.partial(jax.jit, static_argnames=("beta", "metric", "estimator", "block_size"))
def _grouped_quantize(z, codebooks, *, beta, metric, estimator, block_size):
  quantize_group = functools.partial(quantize, beta=beta, metric=metric, estimator=estimator,
                                     block_size=block_size)
  out = jax.vmap(quantize_group, in_axes=(-2, 0), out_axes=VQOutput(-2, -1, 0, 0))(
      split_groups(z, codebooks.shape[0]), codebooks)
  return VQOutput(out.quantized.reshape(z.shape), out.indices, jnp.mean(out.codebook_loss),
                  jnp.mean(out.commitment_loss))


def grouped_lookup(indices, codebooks, *, metric: str = "l2"):
  """Indices [..., G] -> the groups' codes concatenated, float32 [..., G * d]."""
  codes = level_codes(indices, codebooks, metric=metric)
  return codes.reshape(*codes.shape[:-2], -1)


def grouped_kmeans_codebooks(key, z, groups: int, codebook_size: int, *,
                             iterations: int = 10, axis_name=None):
  """[groups, K, dim / groups] codebooks by k-means on each group of z [..., dim]."""
  kmeans = functools.partial(initialization.kmeans_codebook, codebook_size=codebook_size,
                             iterations=iterations, axis_name=axis_name)
  return jax.vmap(kmeans, in_axes=(0, -2))(jax.random.split(key, groups),
                                           split_groups(z, groups))


# State of a stack of L codebooks: inputs [..., L, level_dim], indices [..., L].

def levels_in_use(indices, *, axis_name=None):
  """bool [L]: levels with no -1 index on any replica (not dropped anywhere)."""
  validation.check_indices(indices)
  kept = jnp.all(indices.reshape(-1, indices.shape[-1]) >= 0, axis=0)
  if axis_name is not None:
    kept = jax.lax.pmin(kept.astype(jnp.int32), axis_name) > 0
  return kept


def _keep_where(kept, new, old):
  """Per level: `new` where kept, else `old` (pytrees with a leading L axis)."""
  return jax.tree.map(lambda n, o: jnp.where(kept.reshape((-1,) + (1,) * (n.ndim - 1)), n, o),
                      new, old)


def ema_init_levels(codebooks) -> ema.EMACodebookState:
  """A stacked EMACodebookState (leaves with a leading L axis) around codebooks [L, K, d]."""
  check_codebook_stack(codebooks)
  return jax.vmap(ema.init)(codebooks)


def ema_update_levels(state: ema.EMACodebookState, inputs, indices, *, decay: float = 0.99,
                      epsilon: float = 1e-5, axis_name=None) -> ema.EMACodebookState:
  """`ema.update` for every level; a level dropped on any replica keeps its state."""
  _check_level_indices(indices, state.codebook)
  update = functools.partial(ema.update, decay=decay, epsilon=epsilon, axis_name=axis_name)
  new = jax.vmap(update, in_axes=(0, -2, -1))(state, inputs, jnp.maximum(indices, 0))
  return _keep_where(levels_in_use(indices, axis_name=axis_name), new, state)


def update_usage_levels(usage, indices, *, decay: float = 0.99, axis_name=None):
  """`restart.update_usage` for every level of usage [L, K]; dropped levels keep theirs."""
  validation.check_indices(indices)
  update = functools.partial(restart.update_usage, decay=decay, axis_name=axis_name)
  new = jax.vmap(update, in_axes=(0, -1))(usage, jnp.maximum(indices, 0))
  return _keep_where(levels_in_use(indices, axis_name=axis_name), new, usage)


def restart_dead_codes_levels(key, codebooks, usage, inputs, *, threshold: float,
                              axis_name=None):
  """`restart.restart_dead_codes` for every level, each from its own inputs.

  Returns (codebooks [L, K, d], dead [L, K]).
  """
  check_codebook_stack(codebooks)
  restart_level = functools.partial(restart.restart_dead_codes, threshold=threshold,
                                    axis_name=axis_name)
  return jax.vmap(restart_level, in_axes=(0, 0, 0, -2))(
      jax.random.split(key, codebooks.shape[0]), codebooks, usage, inputs)


def restart_dead_codes_ema_levels(key, state: ema.EMACodebookState, inputs, *,
                                  threshold: float, axis_name=None):
  """`restart.restart_dead_codes_ema` for every level. Returns (state, dead [L, K])."""
  check_codebook_stack(state.codebook)
  restart_level = functools.partial(restart.restart_dead_codes_ema, threshold=threshold,
                                    axis_name=axis_name)
  return jax.vmap(restart_level, in_axes=(0, 0, -2))(
      jax.random.split(key, state.codebook.shape[0]), state, inputs)


def level_metrics(indices, codebook_size: int, *, axis_name=None):
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
