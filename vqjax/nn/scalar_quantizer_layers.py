"""Flax linen layers over the quantizers with an implicit or logit-driven codebook:
FSQ, LFQ and Gumbel-softmax. Called like the VQ layers, `layer(x, train=...)`, they
return a `QuantizerOutput`, have `input_dim`, `num_codes` and `decode_indices(indices)`,
and report usage metrics over the global batch on `axis_name`.
"""
from __future__ import annotations

import math
from collections.abc import Hashable

import flax.linen as nn
import jax

from vqjax.nn.output import QuantizerOutput
from vqjax.nn.quantizer_layers import layer_rng
from vqjax.nn.registry import register_quantizer
from vqjax.quantizers import fsq, gumbel, initialization, lfq
from vqjax.quantizers import _validation as validation


@register_quantizer("fsq")
class FSQ(nn.Module):
  """Finite scalar quantization over `fsq.quantize`; no variables, no losses.

  `__call__(z, *, train)` -> QuantizerOutput with losses {}; z has len(levels) channels.
  `train` is accepted so that every quantizer layer is called the same way.
  """
  levels: tuple[int, ...]
  axis_name: Hashable | None = None

  input_dim_field = "len(levels)"

  @property
  def input_dim(self) -> int:
    return len(self.levels)

  @property
  def num_codes(self) -> int:
    return math.prod(self.levels)

  def __call__(self, z, *, train: bool) -> QuantizerOutput:
    del train  # FSQ behaves the same in training and evaluation
    out = fsq.quantize(z, self.levels)
    usage = fsq.codebook_metrics(out.indices, self.levels, axis_name=self.axis_name)
    return QuantizerOutput(out.quantized, out.indices, {}, usage)

  def decode_indices(self, indices):
    """int32 indices [...] -> float32 codes [..., len(levels)] in [-1, 1]."""
    return fsq.indices_to_codes(indices, self.levels)


@register_quantizer("lfq")
class LFQ(nn.Module):
  """Lookup-free quantization over `lfq.quantize`; no variables.

  `__call__(z, *, train)` -> QuantizerOutput with losses entropy_loss and commitment_loss
  (unweighted, global over axis_name) and metrics that add per_sample_entropy and
  batch_entropy to usage; z has `dim` channels.
  """
  dim: int
  scale: float = 1.0
  inverse_temperature: float = 100.0
  diversity_weight: float = 1.0
  entropy: str = "exact"
  block_size: int = 256
  axis_name: Hashable | None = None

  input_dim_field = "dim"

  @property
  def input_dim(self) -> int:
    return self.dim

  @property
  def num_codes(self) -> int:
    return 2 ** self.dim

  def __call__(self, z, *, train: bool) -> QuantizerOutput:
    del train  # LFQ behaves the same in training and evaluation
    validation.check_vectors(z, self.dim)
    out = lfq.quantize(z, scale=self.scale, inverse_temperature=self.inverse_temperature,
                       diversity_weight=self.diversity_weight, entropy=self.entropy,
                       block_size=self.block_size, axis_name=self.axis_name)
    losses = {"entropy_loss": out.entropy_loss, "commitment_loss": out.commitment_loss}
    usage = lfq.codebook_metrics(out.indices, self.dim, axis_name=self.axis_name)
    metrics = {**usage, "per_sample_entropy": out.per_sample_entropy,
               "batch_entropy": out.batch_entropy}
    return QuantizerOutput(out.quantized, out.indices, losses, metrics)

  def decode_indices(self, indices):
    """int32 indices [...] -> float32 codes [..., dim] with values +-scale."""
    return lfq.indices_to_codes(indices, self.dim, scale=self.scale)


@register_quantizer("gumbel")
class GumbelQuantizer(nn.Module):
  """Gumbel-softmax quantization over `gumbel.quantize`: logits [..., codebook_size] pick
  codes of a trainable params/codebook [codebook_size, dim].

  `__call__(logits, *, train, temperature=None)` -> QuantizerOutput with losses kl_loss
  (unweighted). With train=True the Gumbel noise comes from the 'quantizer' rng stream (a
  different key per replica of axis_name); evaluation takes argmax(logits). temperature
  overrides the field, e.g. with an annealing schedule.
  """
  codebook_size: int
  dim: int
  temperature: float = 1.0
  hard: bool = True
  axis_name: Hashable | None = None
  codebook_init_scale: float | None = None

  input_dim_field = "codebook_size"

  @property
  def input_dim(self) -> int:
    return self.codebook_size  # the input is one logit per code

  @property
  def num_codes(self) -> int:
    return self.codebook_size

  def setup(self):
    validation.check_codebook_size(self.codebook_size)
    self.codebook = self.param("codebook", lambda key: initialization.random_codebook(
        key, self.codebook_size, self.dim, scale=self.codebook_init_scale))

  def __call__(self, logits, *, train: bool, temperature=None) -> QuantizerOutput:
    key = None
    if train:
      key = layer_rng(self, "Gumbel sampling")
      if self.axis_name is not None:
        key = jax.random.fold_in(key, jax.lax.axis_index(self.axis_name))
    out = gumbel.quantize(logits, self.codebook, key=key, hard=self.hard,
                          temperature=self.temperature if temperature is None else temperature)
    usage = gumbel.codebook_metrics(out.indices, self.codebook_size, axis_name=self.axis_name)
    return QuantizerOutput(out.quantized, out.indices, {"kl_loss": out.kl_loss}, usage)

  def decode_indices(self, indices):
    """int32 indices [...] -> float32 code vectors [..., dim]."""
    return gumbel.indices_to_codes(indices, self.codebook)
