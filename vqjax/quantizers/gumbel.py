"""Gumbel-softmax quantization (DALL-E; taming-transformers' GumbelQuantize).

The encoder outputs logits [..., K] over a codebook [K, dim]:

    soft      = softmax((logits + g) / temperature),   g ~ Gumbel(0, 1)
    one_hot   = one_hot(argmax(logits + g)) + (soft - sg(soft))   hard=True, straight-through
    quantized = one_hot @ codebook
    kl_loss   = mean KL(softmax(logits) || uniform) = log K - H(softmax(logits))

With key=None there is no noise (evaluation): the code is argmax(logits). `indices` is the
code that was picked, argmax(logits + g), so that hard samples satisfy
quantized == codebook[indices]; without noise that is argmax(logits). Under pmap, give
every device its own key (e.g. fold in `jax.lax.axis_index`). Math is float32;
`quantized` has the logits' dtype. The KL is unweighted (taming uses 5e-4). The family's
verbs: `quantize`, `indices_to_codes`, `codebook_metrics`.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from vqjax.quantizers import vector_quantization
from vqjax.quantizers import _validation as validation
from vqjax.quantizers.metrics import codebook_metrics  # the family's metrics verb

sg = jax.lax.stop_gradient


class GumbelOutput(NamedTuple):
  quantized: jax.Array  # [..., dim], the logits' dtype; gradients reach logits and codebook
  indices: jax.Array    # [...] int32, the sampled code (argmax(logits) when key is None)
  kl_loss: jax.Array    # scalar float32, KL(softmax(logits) || uniform), mean over positions


def kl_to_uniform(logits: jax.Array) -> jax.Array:
  """mean over positions of KL(softmax(logits) || uniform over K); float32 scalar, nats."""
  validation.check_vectors(logits, name="logits")
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  codebook_size = logits.shape[-1]
  kl = jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1) + jnp.log(float(codebook_size))
  return jnp.mean(kl)


def sample_one_hot(logits: jax.Array, *, key: jax.Array | None = None,
                   temperature: float | jax.Array = 1.0,
                   hard: bool = True) -> tuple[jax.Array, jax.Array]:
  """(relaxed one-hot [..., K] float32, int32 indices [...]) from logits [..., K].

  hard=True: exactly one-hot forward, gradient of the relaxed sample. key=None: no noise.
  """
  validation.check_vectors(logits, name="logits")
  # A traced temperature (an annealing schedule under jit) is not checked.
  if isinstance(temperature, (int, float)) and temperature <= 0:
    raise ValueError(f"temperature is {temperature}; it must be > 0 (e.g. anneal 1.0 -> 1/16)")
  logits = logits.astype(jnp.float32)
  if key is not None:
    logits = logits + jax.random.gumbel(key, logits.shape, jnp.float32)
  soft = jax.nn.softmax(logits / temperature, axis=-1)
  indices = jnp.argmax(sg(logits), axis=-1).astype(jnp.int32)
  if not hard:
    return soft, indices
  # one_hot + (soft - sg(soft)): the forward value is exactly one-hot.
  return jax.nn.one_hot(indices, logits.shape[-1], dtype=jnp.float32) + (soft - sg(soft)), indices


def quantize(logits: jax.Array, codebook: jax.Array, *, key: jax.Array | None = None,
             temperature: float | jax.Array = 1.0, hard: bool = True) -> GumbelOutput:
  """Picks a code for every logit vector of logits [..., K] from codebook [K, dim].

  With hard=False `quantized` is the soft mixture of codes and `indices` its argmax.
  """
  validation.check_codebook(codebook)
  validation.check_vectors(logits, name="logits")
  if logits.shape[-1] != codebook.shape[0]:
    raise ValueError(
        f"logits have {logits.shape[-1]} entries in their last dimension but the codebook has "
        f"{codebook.shape[0]} codes; the encoder must output one logit per code")
  one_hot, indices = sample_one_hot(logits, key=key, temperature=temperature, hard=hard)
  quantized = jnp.dot(one_hot, codebook.astype(jnp.float32),
                      precision=jax.lax.Precision.HIGHEST)
  return GumbelOutput(quantized.astype(logits.dtype), indices, kl_to_uniform(logits))


def indices_to_codes(indices: jax.Array, codebook: jax.Array) -> jax.Array:
  """Code vectors for integer indices [...] -> [..., dim]."""
  return vector_quantization.indices_to_codes(indices, codebook)
