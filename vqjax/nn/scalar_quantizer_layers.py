"""Flax linen layers over the quantizers with an implicit or logit-driven codebook:
FSQ, LFQ and Gumbel-softmax. Called like the VQ layers, `layer(x, train=...)`, with
`decode_indices(indices)`, and usage metrics over the global batch on `axis_name`.
"""
from __future__ import annotations

from collections.abc import Hashable
from typing import NamedTuple

import flax.linen as nn
import jax

from vqjax.nn.quantizer_layers import layer_rng
from vqjax.quantizers import fsq, gumbel, initialization, lfq, validation


class GumbelLayerOutput(NamedTuple):
  quantized: jax.Array
  indices: jax.Array
  kl_loss: jax.Array
  metrics: dict


class LFQLayerOutput(NamedTuple):
  quantized: jax.Array
  indices: jax.Array
  entropy_loss: jax.Array
  commitment_loss: jax.Array
  per_sample_entropy: jax.Array
  batch_entropy: jax.Array
  metrics: dict


class FSQLayerOutput(NamedTuple):
  quantized: jax.Array
  indices: jax.Array
  metrics: dict


class FSQ(nn.Module):
  """Finite scalar quantization over `fsq.quantize`; no variables, no losses.

  `__call__(z, *, train)` -> FSQLayerOutput; z has len(levels) channels. `train` is
  accepted so that every quantizer layer is called the same way.
  """
  levels: tuple[int, ...]
  axis_name: Hashable | None = None

  def __call__(self, z, *, train: bool) -> FSQLayerOutput:
    del train  # FSQ behaves the same in training and evaluation
    out = fsq.quantize(z, self.levels)
    return FSQLayerOutput(*out, fsq.metrics(out.indices, self.levels, axis_name=self.axis_name))

  def decode_indices(self, indices):
    """int32 indices [...] -> float32 codes [..., len(levels)] in [-1, 1]."""
    return fsq.indices_to_codes(indices, self.levels)


class LFQ(nn.Module):
  """Lookup-free quantization over `lfq.quantize`; no variables.

  `__call__(z, *, train)` -> LFQLayerOutput (unweighted entropy and commitment losses,
  global over axis_name); z has `dim` channels.
  """
  dim: int
  scale: float = 1.0
  inverse_temperature: float = 100.0
  diversity_weight: float = 1.0
  entropy: str = "exact"
  block_size: int = 256
  axis_name: Hashable | None = None

  def __call__(self, z, *, train: bool) -> LFQLayerOutput:
    del train  # LFQ behaves the same in training and evaluation
    validation.check_vectors(z, self.dim)
    out = lfq.quantize(z, scale=self.scale, inverse_temperature=self.inverse_temperature,
                       diversity_weight=self.diversity_weight, entropy=self.entropy,
                       block_size=self.block_size, axis_name=self.axis_name)
    return LFQLayerOutput(*out, lfq.metrics(out.indices, self.dim, axis_name=self.axis_name))

  def decode_indices(self, indices):
    """int32 indices [...] -> float32 codes [..., dim] with values +-scale."""
    return lfq.indices_to_codes(indices, self.dim, scale=self.scale)


class GumbelQuantizer(nn.Module):
  """Gumbel-softmax quantization over `gumbel.quantize`: logits [..., codebook_size] pick
  codes of a trainable params/codebook [codebook_size, dim].

  `__call__(logits, *, train, temperature=None)` -> GumbelLayerOutput. With train=True
  the Gumbel noise comes from the 'quantizer' rng stream (a different key per replica of
  axis_name); evaluation takes argmax(logits). temperature overrides the field, e.g. with
  an annealing schedule.
  """
  codebook_size: int
  dim: int
  temperature: float = 1.0
  hard: bool = True
  axis_name: Hashable | None = None
  codebook_init_scale: float | None = None

  def setup(self):
    validation.check_codebook_size(self.codebook_size)
    self.codebook = self.param("codebook", lambda key: initialization.random_codebook(
        key, self.codebook_size, self.dim, scale=self.codebook_init_scale))

  def __call__(self, logits, *, train: bool, temperature=None) -> GumbelLayerOutput:
    key = None
    if train:
      key = layer_rng(self, "Gumbel sampling")
      if self.axis_name is not None:
        key = jax.random.fold_in(key, jax.lax.axis_index(self.axis_name))
    out = gumbel.quantize(logits, self.codebook, key=key, hard=self.hard,
                          temperature=self.temperature if temperature is None else temperature)
    return GumbelLayerOutput(*out, gumbel.metrics(out.indices, self.codebook,
                                                  axis_name=self.axis_name))

  def decode_indices(self, indices):
    """int32 indices [...] -> float32 code vectors [..., dim]."""
    return gumbel.indices_to_codes(indices, self.codebook)
