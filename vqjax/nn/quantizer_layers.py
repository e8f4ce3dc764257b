"""Flax linen layers over the pure quantizers, so that a model uses any quantizer as a layer.

Each layer declares its variables, calls the pure functions of `vqjax.quantizers`, and
returns a `QuantizerOutput` (vqjax.nn.output): quantized, indices, `losses` (the pure
output's loss terms) and `metrics`: codebook usage over the global batch on `axis_name`
(perplexity, codes_used_fraction, dead_codes; for the residual and grouped layers, arrays
with one entry per level or group). Every layer is called as `layer(x, train=...)`, has
`input_dim`, `num_codes` and `decode_indices(indices)`, and is registered by name.

Codebooks of VectorQuantizer, ResidualVectorQuantizer and GroupedVectorQuantizer, of
shape [K, dim], or [L, K, d] with a leading level or group axis:
  ema_decay=None   params/codebook, learned from codebook_loss by the optimizer.
  ema_decay=float  quantizer_state/{codebook, cluster_size, embed_sum}, the fields of an
                   `EMACodebookState`; no gradient reaches it (codebook_loss only reports).
State changes (the EMA step, the usage EMA, dead-code restarts) happen only with
train=True and 'quantizer_state' mutable (`apply(..., mutable=['quantizer_state'])`),
never in `init`.

Dead-code restart (dead_code_threshold > 0) re-seeds, after the update, the codes whose
usage fell below the threshold with vectors of the current batch. Usage is the EMA count
N_i of an EMA codebook, or quantizer_state/usage (decay usage_decay) for a trainable one.
A layer cannot write params during training, so a trainable codebook is restarted through
quantizer_state/codebook_offset: the layer searches params/codebook + offset (zero until
a restart), and the optimizer keeps moving restarted codes through params. Restarts and
quantizer dropout draw keys from the rng stream 'quantizer'; under pmap every replica uses
replica 0's key, so all replicas restart the same codes with the same global-batch vectors
and hold the same state.

k-means initialization: `with_kmeans_codebook(layer, variables, z, key)` returns the
variables with the codebooks fit by k-means on z (the global batch on axis_name). It
applies the layer's `kmeans_initialize` method, which a model can also call on its
quantizer submodule from a method applied with mutable=True.
"""
from __future__ import annotations

from collections.abc import Hashable

import flax.linen as nn
import jax
import jax.numpy as jnp

from vqjax import collectives
from vqjax.nn.output import QuantizerOutput
from vqjax.nn.registry import register_quantizer
from vqjax.quantizers import (ema, grouped, initialization, levels, metrics, residual,
                              vector_quantization)
from vqjax.quantizers import _validation as validation

STATE = "quantizer_state"
RNG = "quantizer"

sg = jax.lax.stop_gradient


def vq_output(out, usage: dict) -> QuantizerOutput:
  """A QuantizerOutput from a pure `VQOutput` (residual: losses summed over levels;
  grouped: averaged over groups) and usage metrics."""
  losses = {"codebook_loss": out.codebook_loss, "commitment_loss": out.commitment_loss}
  return QuantizerOutput(out.quantized, out.indices, losses, usage)


def with_kmeans_codebook(layer: nn.Module, variables, z, key, *, iterations: int = 10):
  """`variables` with the layer's codebooks set by k-means on z [..., dim].

  Resets the EMA statistics, usage and restart offsets that go with the codebooks. Under
  pmap (with the layer's axis_name) k-means runs on the global batch.
  """
  _, variables = layer.apply(variables, z, key, iterations=iterations,
                             method=layer.kmeans_initialize, mutable=True)
  return variables


# Codebook variables shared by the three VQ layers; `layer` is the module in setup/a method.

def _check_config(layer) -> None:
  validation.check_codebook_size(layer.codebook_size)
  if layer.dim < 1:
    raise ValueError(f"dim is {layer.dim}; code vectors need at least one dimension")
  if layer.ema_decay is not None and not 0.0 <= layer.ema_decay < 1.0:
    raise ValueError(f"ema_decay is {layer.ema_decay}; it must be in [0, 1) (0.99 is usual), "
                     "or None for a codebook learned by gradients")
  if layer.dead_code_threshold < 0:
    raise ValueError(f"dead_code_threshold is {layer.dead_code_threshold}; it must be >= 0 "
                     "(0 disables dead-code restarts)")
  if not 0.0 <= layer.usage_decay < 1.0:
    raise ValueError(f"usage_decay is {layer.usage_decay}; it must be in [0, 1) (0.99 is usual)")


def _init_ema(codebooks) -> ema.EMACodebookState:
  return ema.init(codebooks) if codebooks.ndim == 2 else levels.ema_init_levels(codebooks)


def _declare_codebooks(layer, shape: tuple[int, ...]) -> None:
  """Declares the codebook variables of the module docstring, of shape [K, d] or [L, K, d]."""
  def random_codebooks(key):
    draw = lambda k: initialization.random_codebook(k, shape[-2], shape[-1],
                                                    scale=layer.codebook_init_scale)
    return draw(key) if len(shape) == 2 else jax.vmap(draw)(jax.random.split(key, shape[0]))

  if layer.ema_decay is None:
    layer.param("codebook", random_codebooks)
    if layer.dead_code_threshold > 0:
      layer.variable(STATE, "usage", jnp.ones, shape[:-1], jnp.float32)
      layer.variable(STATE, "codebook_offset", jnp.zeros, shape, jnp.float32)
  else:
    codebook = layer.variable(STATE, "codebook",
                              lambda: random_codebooks(layer.make_rng("params")))
    layer.variable(STATE, "cluster_size", lambda: _init_ema(codebook.value).cluster_size)
    layer.variable(STATE, "embed_sum", lambda: _init_ema(codebook.value).embed_sum)


def _codebooks(layer):
  """The codebooks the layer searches."""
  if layer.ema_decay is not None:
    return layer.get_variable(STATE, "codebook")
  codebooks = layer.get_variable("params", "codebook")
  if layer.dead_code_threshold > 0:
    codebooks = codebooks + sg(layer.get_variable(STATE, "codebook_offset"))
  return codebooks


def _write_codebooks(layer, codebooks) -> None:
  """Replaces the codebooks and resets the statistics that go with them."""
  if layer.ema_decay is not None:
    for name, value in _init_ema(codebooks)._asdict().items():
      layer.put_variable(STATE, name, value)
    return
  layer.put_variable("params", "codebook", codebooks)
  if layer.dead_code_threshold > 0:
    layer.put_variable(STATE, "usage", jnp.ones(codebooks.shape[:-1], jnp.float32))
    layer.put_variable(STATE, "codebook_offset", jnp.zeros_like(codebooks))


def _updates_state(layer, train: bool) -> bool:
  return train and layer.is_mutable_collection(STATE) and not layer.is_initializing()


def layer_rng(layer, purpose: str):
  if not layer.has_rng(RNG):
    raise ValueError(f"{purpose} needs the rng stream {RNG!r}: pass "
                     f"rngs={{{RNG!r}: key}} to apply, or call with train=False")
  return layer.make_rng(RNG)


def _shared_rng(layer, purpose: str):
  """A key from the 'quantizer' stream, replica 0's on every replica of axis_name."""
  key = layer_rng(layer, purpose)
  if layer.axis_name is None:
    return key
  typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
  data = jax.random.key_data(key) if typed else key
  data = collectives.from_first(data, layer.axis_name)  # all_gather takes no typed keys
  return jax.random.wrap_key_data(data, impl=jax.random.key_impl(key)) if typed else data


def _update_state(layer, inputs, indices, *, stacked: bool) -> None:
  """EMA step, usage EMA and dead-code restart after a train-mode forward pass.

  inputs [..., L, d] and indices [..., L] are what each of the L codebooks quantized;
  stacked=False: the layer stores one [K, d] codebook (L = 1).
  """
  def read(collection, name):
    value = layer.get_variable(collection, name)
    return value if stacked else value[None]

  def write(name, value):
    layer.put_variable(STATE, name, value if stacked else value[0])

  threshold, axis_name = layer.dead_code_threshold, layer.axis_name
  if layer.ema_decay is not None:
    state = ema.EMACodebookState(*(read(STATE, name) for name in ema.EMACodebookState._fields))
    state = levels.ema_update_levels(state, inputs, indices, decay=layer.ema_decay,
                                       epsilon=layer.epsilon, axis_name=axis_name)
    if threshold > 0:
      state, _ = levels.restart_dead_codes_ema_levels(
          _shared_rng(layer, "dead-code restart"), state, inputs, threshold=threshold,
          axis_name=axis_name)
    for name, value in state._asdict().items():
      write(name, value)
  elif threshold > 0:
    usage = levels.update_usage_levels(read(STATE, "usage"), indices,
                                         decay=layer.usage_decay, axis_name=axis_name)
    learned, offset = sg(read("params", "codebook")), read(STATE, "codebook_offset")
    codebooks, dead = levels.restart_dead_codes_levels(
        _shared_rng(layer, "dead-code restart"), learned + offset, usage, inputs,
        threshold=threshold, axis_name=axis_name)
    write("codebook_offset", jnp.where(dead[..., None], codebooks - learned, offset))
    write("usage", jnp.where(dead, threshold, usage))


# The VQ layers.

@register_quantizer("vq")
class VectorQuantizer(nn.Module):
  """VQ-VAE quantizer over `vector_quantization.quantize`: one codebook [codebook_size, dim].

  `__call__(z, *, train)` -> QuantizerOutput with losses codebook_loss and commitment_loss
  (times beta) and scalar metrics. codebook_init_scale: the
  range of the uniform initial codes (None: 1 / codebook_size).
  """
  codebook_size: int
  dim: int
  beta: float = 0.25
  metric: str = "l2"
  estimator: str = "straight_through"
  ema_decay: float | None = None
  epsilon: float = 1e-5
  dead_code_threshold: float = 0.0
  usage_decay: float = 0.99
  axis_name: Hashable | None = None
  codebook_init_scale: float | None = None

  def setup(self):
    _check_config(self)
    _declare_codebooks(self, (self.codebook_size, self.dim))

  input_dim_field = "dim"

  @property
  def input_dim(self) -> int:
    return self.dim

  @property
  def num_codes(self) -> int:
    return self.codebook_size

  def __call__(self, z, *, train: bool) -> QuantizerOutput:
    validation.check_vectors(z, self.dim)
    out = vector_quantization.quantize(z, _codebooks(self), beta=self.beta, metric=self.metric,
                                       estimator=self.estimator)
    if _updates_state(self, train):
      _update_state(self, z[..., None, :], out.indices[..., None], stacked=False)
    usage = metrics.codebook_metrics(out.indices, self.codebook_size, axis_name=self.axis_name)
    return vq_output(out, usage)

  def decode_indices(self, indices):
    """int32 indices [...] -> float32 code vectors [..., dim]."""
    return vector_quantization.indices_to_codes(indices, _codebooks(self), metric=self.metric)

  def kmeans_initialize(self, z, key, *, iterations: int = 10):
    """Sets the codebook to k-means of z (apply with mutable=True; see with_kmeans_codebook)."""
    _write_codebooks(self, initialization.kmeans_codebook(
        key, z, self.codebook_size, iterations=iterations, axis_name=self.axis_name))


@register_quantizer("residual")
class ResidualVectorQuantizer(nn.Module):
  """Residual VQ over `residual.quantize`: codebooks [levels, codebook_size, dim].

  `__call__(z, *, train, active_levels=None)` -> QuantizerOutput with indices [..., levels],
  losses summed over levels and metrics of shape [levels]. dropout_levels: with train=True
  and no active_levels, quantizer dropout (the number of levels drawn once per call from
  the 'quantizer' rng stream; dropped levels have index -1). active_levels (int in
  [1, levels]) uses only the first levels, e.g. to decode at a lower bitrate.
  """
  levels: int
  codebook_size: int
  dim: int
  dropout_levels: bool = False
  beta: float = 0.25
  metric: str = "l2"
  estimator: str = "straight_through"
  ema_decay: float | None = None
  epsilon: float = 1e-5
  dead_code_threshold: float = 0.0
  usage_decay: float = 0.99
  axis_name: Hashable | None = None
  codebook_init_scale: float | None = None

  def setup(self):
    _check_config(self)
    if self.levels < 1:
      raise ValueError(f"levels is {self.levels}; residual VQ needs at least one level")
    _declare_codebooks(self, (self.levels, self.codebook_size, self.dim))

  input_dim_field = "dim"

  @property
  def input_dim(self) -> int:
    return self.dim

  @property
  def num_codes(self) -> int:
    return self.codebook_size

  def __call__(self, z, *, train: bool, active_levels=None) -> QuantizerOutput:
    validation.check_vectors(z, self.dim)
    codebooks = _codebooks(self)
    dropout = train and self.dropout_levels and active_levels is None
    out = residual.quantize(
        z, codebooks, beta=self.beta, metric=self.metric, estimator=self.estimator,
        key=_shared_rng(self, "quantizer dropout") if dropout else None,
        dropout_levels=dropout, active_levels=active_levels)
    if _updates_state(self, train):
      inputs = residual.residual_inputs(z, out.indices, codebooks, metric=self.metric)
      _update_state(self, inputs, out.indices, stacked=True)
    usage = residual.codebook_metrics(out.indices, self.codebook_size,
                                      axis_name=self.axis_name)
    return vq_output(out, usage)

  def decode_indices(self, indices):
    """int32 indices [..., levels] -> float32 vectors [..., dim]; levels of -1 add nothing."""
    return residual.indices_to_codes(indices, _codebooks(self), metric=self.metric)

  def kmeans_initialize(self, z, key, *, iterations: int = 10):
    """Sets the codebooks by k-means, level by level, on the residuals of z (mutable=True)."""
    _write_codebooks(self, residual.kmeans_codebooks(
        key, z, self.levels, self.codebook_size, iterations=iterations,
        axis_name=self.axis_name))


@register_quantizer("grouped")
class GroupedVectorQuantizer(nn.Module):
  """Grouped (product) VQ over `grouped.quantize`: dim split into `groups` equal parts,
  codebooks [groups, codebook_size, dim / groups].

  `__call__(z, *, train)` -> QuantizerOutput with indices [..., groups], losses averaged
  over groups and metrics of shape [groups].
  """
  groups: int
  codebook_size: int
  dim: int
  beta: float = 0.25
  metric: str = "l2"
  estimator: str = "straight_through"
  ema_decay: float | None = None
  epsilon: float = 1e-5
  dead_code_threshold: float = 0.0
  usage_decay: float = 0.99
  axis_name: Hashable | None = None
  codebook_init_scale: float | None = None

  def setup(self):
    _check_config(self)
    grouped.check_groups(self.dim, self.groups)
    _declare_codebooks(self, (self.groups, self.codebook_size, self.dim // self.groups))

  input_dim_field = "dim"

  @property
  def input_dim(self) -> int:
    return self.dim

  @property
  def num_codes(self) -> int:
    return self.codebook_size

  def __call__(self, z, *, train: bool) -> QuantizerOutput:
    validation.check_vectors(z, self.dim)
    out = grouped.quantize(z, _codebooks(self), beta=self.beta, metric=self.metric,
                           estimator=self.estimator)
    if _updates_state(self, train):
      _update_state(self, grouped.split_groups(z, self.groups), out.indices, stacked=True)
    usage = grouped.codebook_metrics(out.indices, self.codebook_size, axis_name=self.axis_name)
    return vq_output(out, usage)

  def decode_indices(self, indices):
    """int32 indices [..., groups] -> float32 vectors [..., dim]."""
    return grouped.indices_to_codes(indices, _codebooks(self), metric=self.metric)

  def kmeans_initialize(self, z, key, *, iterations: int = 10):
    """Sets each group's codebook by k-means on that group of z (apply with mutable=True)."""
    _write_codebooks(self, grouped.kmeans_codebooks(
        key, z, self.groups, self.codebook_size, iterations=iterations,
        axis_name=self.axis_name))
