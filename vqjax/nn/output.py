"""The one contract every quantizer layer of vqjax.nn keeps, so models need no per-layer code.

A quantizer layer is a linen module with
  __call__(x, *, train) -> QuantizerOutput
  input_dim             the size of the last axis it quantizes (e.g. dim; len(levels) for
                        FSQ; codebook_size for Gumbel-softmax, whose input is logits)
  num_codes             the number of values one index takes (K; prod(levels) for FSQ;
                        2 ** dim for LFQ)
  decode_indices(indices) -> the code vectors the indices stand for, like `quantized`
and is registered by name with `register_quantizer`, so that the config builder finds it.
Optionally, the class attribute `input_dim_field` names the field the user sets to change
input_dim (e.g. "len(levels)"), for error messages.
"""
from __future__ import annotations

from typing import NamedTuple

import jax


class QuantizerOutput(NamedTuple):
  quantized: jax.Array            # [..., dim], what the decoder reads; gradients reach x
  indices: jax.Array              # int32 [...] (residual/grouped: [..., levels]; -1: dropped)
  losses: dict[str, jax.Array]    # name -> float32 scalar, as weighted as the layer reports
                                  # them (codebook_loss, commitment_loss times beta,
                                  # entropy_loss, kl_loss, ...); {} when there are none
  metrics: dict[str, jax.Array]   # usage (perplexity, codes_used_fraction, dead_codes) and
                                  # diagnostics; per-level arrays for residual/grouped
