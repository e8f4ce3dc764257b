"""Lookup-free quantization (Yu et al. 2023, MAGVIT-v2, "Language Model Beats Diffusion").

Every channel of z [..., dim] is quantized to its sign; the codebook is implicit, the 2^dim
vectors of {-scale, scale}^dim, and code c has index sum_i [c_i > 0] 2^i.

    code              = where(z > 0, scale, -scale)          straight-through to z
    q(c | z)          = softmax_c(-inverse_temperature |z - c|^2)   over all 2^dim codes
    entropy_loss      = mean_z H(q(. | z)) - diversity_weight H(mean_z q(. | z))
    commitment_loss   = mean((z - sg(code))^2)

Because |c|^2 is the same for every code, q(. | z) is a product of independent bits with
q(c_i = +scale | z) = sigmoid(4 inverse_temperature scale z_i). The per-sample entropy is
therefore exact and cheap (a sum of per-bit entropies). The batch entropy is computed one
of two ways:
  entropy="exact"       the entropy of the batch-averaged distribution over all 2^dim codes,
                        for dim <= 16, in blocks of `block_size` inputs so that at most a
                        [block_size, 2^dim] matrix is live (also in the backward pass).
  entropy="factorized"  the sum of the entropies of the batch-averaged per-bit marginals;
                        any dim, an upper bound on the exact value, equal to it when the bits
                        are independent across the batch.
The batch average is taken over the global batch (pmean over `axis_name`), and all returned
losses are global means, so 4 devices report the losses of the concatenated batch on one.
The losses are unweighted; weigh them in the train step (MAGVIT-v2 uses 0.1 for the
entropy loss and 0.25 for the commitment loss). The family's verbs: `quantize`,
`indices_to_codes`, `codebook_metrics`.
"""
from __future__ import annotations

from collections.abc import Hashable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from vqjax import collectives
from vqjax.quantizers import _validation as validation
from vqjax.quantizers.metrics import codebook_metrics as _codebook_metrics

ENTROPIES = ("exact", "factorized")
MAX_DIM = 31        # indices are int32
MAX_EXACT_DIM = 16  # the exact batch entropy holds [block_size, 2^dim] probabilities

sg = jax.lax.stop_gradient


class LFQOutput(NamedTuple):
  quantized: jax.Array           # [..., dim], z's dtype, values +-scale; straight-through
  indices: jax.Array             # [...] int32 in [0, 2^dim)
  entropy_loss: jax.Array        # scalar float32: per_sample_entropy - w * batch_entropy
  commitment_loss: jax.Array     # scalar float32: mean((z - sg(code))^2)
  per_sample_entropy: jax.Array  # scalar float32, nats
  batch_entropy: jax.Array       # scalar float32, nats


def _check_dim(dim: int) -> None:
  if not 1 <= int(dim) <= MAX_DIM:
    raise ValueError(
        f"LFQ dim is {dim}; it must be between 1 and {MAX_DIM} so that the 2^dim code "
        "indices fit in int32 (MAGVIT-v2 uses 18)")


def codebook_size(dim: int) -> int:
  _check_dim(dim)
  return 2 ** int(dim)


def _bit_values(dim: int):
  return jnp.left_shift(jnp.int32(1), jnp.arange(dim, dtype=jnp.int32))


def codes_to_indices(codes: jax.Array) -> jax.Array:
  """Code vectors [..., dim] -> int32 indices [...]: bit i is set where codes[..., i] > 0."""
  validation.check_vectors(codes, name="codes")
  _check_dim(codes.shape[-1])
  bits = (sg(codes) > 0).astype(jnp.int32)
  return jnp.sum(bits * _bit_values(codes.shape[-1]), axis=-1)


def indices_to_codes(indices: jax.Array, dim: int, *, scale: float = 1.0) -> jax.Array:
  """int32 indices [...] -> float32 codes [..., dim] with values +-scale."""
  _check_dim(dim)
  validation.check_indices(indices)
  bits = jnp.bitwise_and(jnp.asarray(indices, jnp.int32)[..., None], _bit_values(dim))
  return jnp.where(bits > 0, scale, -scale).astype(jnp.float32)


def codebook(dim: int, *, scale: float = 1.0) -> jax.Array:
  """All 2^dim codes in index order: float32 [2^dim, dim]."""
  return indices_to_codes(jnp.arange(codebook_size(dim), dtype=jnp.int32), dim, scale=scale)


def _entropy(probs, axis: int = -1):
  """-sum p log p in nats, with 0 log 0 = 0 (and a zero gradient there)."""
  safe = jnp.where(probs > 0, probs, 1.0)
  return -jnp.sum(jnp.where(probs > 0, probs * jnp.log(safe), 0.0), axis=axis)


def _bit_entropy(logits):
  """Entropy of Bernoulli(sigmoid(logits)), elementwise, computed stably from the logits."""
  p = jax.nn.sigmoid(logits)
  return p * jax.nn.softplus(-logits) + (1.0 - p) * jax.nn.softplus(logits)


def _mean_code_probabilities(logits, block_size: int):
  """mean over rows of softmax_c(logits . bits(c)) over all 2^dim codes; [N, dim] -> [2^dim].

  log q(c | z) = sum_i bits_i(c) logits_i - sum_i softplus(logits_i): the exact
  per-bit factorization, with the log-partition in closed form.
  """
  count, dim = logits.shape
  bits = (indices_to_codes(jnp.arange(2**dim, dtype=jnp.int32), dim) > 0).astype(jnp.float32)
  block = max(1, min(block_size, count))
  blocks = -(-count // block)
  padding = blocks * block - count
  logits = jnp.pad(logits, ((0, padding), (0, 0))).reshape(blocks, block, dim)
  valid = (jnp.arange(blocks * block) < count).astype(jnp.float32).reshape(blocks, block)

  # Recomputed in the backward pass, so only one [block, 2^dim] tile is ever live.
  @jax.checkpoint
  def add_block(total, inputs):
    block_logits, block_valid = inputs
    log_partition = jnp.sum(jax.nn.softplus(block_logits), axis=-1, keepdims=True)
    log_probs = jnp.dot(block_logits, bits.T, precision=jax.lax.Precision.HIGHEST)
    probs = jnp.exp(log_probs - log_partition)
    return total + jnp.sum(probs * block_valid[:, None], axis=0), None

  total, _ = jax.lax.scan(add_block, jnp.zeros(2**dim, jnp.float32), (logits, valid))
  return total / count


def quantize(z: jax.Array, *, scale: float = 1.0, inverse_temperature: float = 100.0,
             diversity_weight: float = 1.0, entropy: str = "exact", block_size: int = 256,
             axis_name: Hashable | None = None) -> LFQOutput:
  """Quantizes every vector of z [..., dim] to the signs of its channels (times `scale`).

  Math is float32; `quantized` has z's dtype. `axis_name` names the pmap/shard_map axis
  over which the batch distribution and the losses are averaged (None on one device).
  """
  validation.check_vectors(z)
  validation.check_choice(entropy, ENTROPIES, "entropy")
  dim = z.shape[-1]
  _check_dim(dim)
  if entropy == "exact" and dim > MAX_EXACT_DIM:
    raise ValueError(
        f"LFQ dim is {dim}; entropy='exact' sums over all 2^dim codes and allows dim <= "
        f"{MAX_EXACT_DIM}; use entropy='factorized' for larger dims")
  # Traced values (e.g. an annealing schedule under jit) are not checked.
  if isinstance(scale, (int, float)) and scale <= 0:
    raise ValueError(f"scale is {scale}; the LFQ code values +-scale need scale > 0")
  if isinstance(inverse_temperature, (int, float)) and inverse_temperature <= 0:
    raise ValueError(
        f"inverse_temperature is {inverse_temperature}; it must be > 0 (MAGVIT-v2 uses 100)")
  if block_size < 1:
    raise ValueError(f"block_size is {block_size}; it must be at least 1")

  z32 = z.astype(jnp.float32)
  code = jnp.where(z32 > 0, scale, -scale).astype(jnp.float32)
  # code + (z - sg(z)): forward value exactly +-scale, identity gradient to z.
  quantized = code + (z32 - sg(z32))
  indices = codes_to_indices(code)

  # q(c_i = +scale | z) = sigmoid(bit_logits_i), from -t|z - c|^2 with |c|^2 constant.
  bit_logits = (4.0 * inverse_temperature * scale * z32).reshape(-1, dim)
  per_sample_entropy = collectives.pmean(
      jnp.mean(jnp.sum(_bit_entropy(bit_logits), -1)), axis_name)
  if entropy == "exact":
    mean_probs = collectives.pmean(_mean_code_probabilities(bit_logits, block_size),
                                   axis_name)
    batch_entropy = _entropy(mean_probs)
  else:
    mean_bits = collectives.pmean(jnp.mean(jax.nn.sigmoid(bit_logits), axis=0), axis_name)
    batch_entropy = jnp.sum(_entropy(jnp.stack([mean_bits, 1.0 - mean_bits]), axis=0))
  entropy_loss = per_sample_entropy - diversity_weight * batch_entropy
  commitment_loss = collectives.pmean(jnp.mean(jnp.square(z32 - sg(code))), axis_name)
  return LFQOutput(quantized.astype(z.dtype), indices, entropy_loss, commitment_loss,
                   per_sample_entropy, batch_entropy)


def codebook_metrics(indices: jax.Array, dim: int, *,
                     axis_name: Hashable | None = None) -> dict[str, jax.Array]:
  """Codebook usage (perplexity, codes_used_fraction, dead_codes) over the global batch."""
  return _codebook_metrics(indices, codebook_size(dim), axis_name=axis_name)
