"""Autoregressive sampling of token sequences, each decode one compiled program.

In the shape of maskgit's decoder: the model comes in as a callback and the loop is a
`lax.fori_loop` over positions carrying a `SamplingState` (a flax.struct.dataclass), so a
whole sample is one XLA program with no Python loop per token.

  decode(decode_step, cache, rng, ...)        with a key-value cache: decode_step(previous
                                              token [B], position, cache) -> (logits [B, K],
                                              cache) computes one position per step.
  decode_full_recompute(tokens_to_logits, ...) recomputes the whole sequence every step:
                                              tokens_to_logits(tokens [B, L]) -> logits
                                              [B, L, K]; the reference for tests and the
                                              benchmark.

Both draw the token at every position with `sample_logits` (temperature, top-k, top-p;
greedy argmax when greedy=True or temperature=0), from keys split off the one rng, so a key
gives the same tokens on every run, and both samplers give the same tokens for the same
model and key up to float rounding.

For `vqjax.models.TransformerPrior`, `make_sampler` builds the jitted sampler once and
`make_pmap_sampler` its pmapped form: params are broadcast (in_axes=None) and each device
samples its share with the key folded with its axis_index.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Optional

import flax
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class SamplingState:
  position: jax.Array  # int32 scalar: the position sampled next
  tokens: jax.Array    # int32 [B, L]: sampled tokens, 0 where not yet sampled
  cache: Any           # the decode_step's cache pytree (None for full recomputation)
  rng: jax.Array       # key of the next position's draw


def check_sampling_args(*, temperature: float, top_k: Optional[int], top_p: Optional[float]):
  if temperature < 0:
    raise ValueError(f"temperature is {temperature}; use a temperature >= 0 (0 is greedy)")
  if top_k is not None and top_k < 1:
    raise ValueError(f"top_k is {top_k}; use top_k >= 1, or None to keep every token")
  if top_p is not None and not 0 < top_p <= 1:
    raise ValueError(f"top_p is {top_p}; use 0 < top_p <= 1, or None to keep every token")


def filter_logits(logits, *, top_k: Optional[int] = None, top_p: Optional[float] = None):
  """Logits [..., K] with every token outside the top-k / nucleus top-p set to -inf.

  top-p keeps the fewest most likely tokens whose probabilities sum to at least top_p
  (always the most likely one); ties at the threshold are all kept.
  """
  logits = logits.astype(jnp.float32)
  masked = jnp.full_like(logits, -jnp.inf)
  if top_k is not None and top_k < logits.shape[-1]:
    kth_largest = jax.lax.top_k(logits, top_k)[0][..., -1:]
    logits = jnp.where(logits >= kth_largest, logits, masked)
  if top_p is not None and top_p < 1:
    descending = -jnp.sort(-logits, axis=-1)
    probabilities = jax.nn.softmax(descending, axis=-1)
    mass_before = jnp.cumsum(probabilities, axis=-1) - probabilities
    kept = jnp.sum(mass_before < top_p, axis=-1, keepdims=True)  # >= 1
    threshold = jnp.take_along_axis(descending, kept - 1, axis=-1)
    logits = jnp.where(logits >= threshold, logits, masked)
  return logits


def sample_logits(rng, logits, *, temperature: float = 1.0, top_k: Optional[int] = None,
                  top_p: Optional[float] = None, greedy: bool = False):
  """Int32 tokens [...] drawn from logits [..., K]; argmax if greedy or temperature == 0."""
  if greedy or temperature == 0:
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)
  logits = filter_logits(logits.astype(jnp.float32) / temperature, top_k=top_k, top_p=top_p)
  return jax.random.categorical(rng, logits, axis=-1).astype(jnp.int32)


def _run(logits_fn, state: SamplingState, num_steps: int, sampling: dict) -> jax.Array:
  """Samples positions state.position .. num_steps - 1; logits_fn(state) -> (logits, cache)."""
  def step(_, state):
    logits, cache = logits_fn(state)
    rng, draw_rng = jax.random.split(state.rng)
    token = sample_logits(draw_rng, logits, **sampling)
    tokens = jax.lax.dynamic_update_index_in_dim(state.tokens, token, state.position, axis=1)
    return SamplingState(state.position + 1, tokens, cache, rng)

  return jax.lax.fori_loop(0, num_steps, step, state).tokens


def _initial_state(rng, batch_size: int, length: int, cache) -> SamplingState:
  return SamplingState(jnp.zeros((), jnp.int32), jnp.zeros((batch_size, length), jnp.int32),
                       cache, rng)


def decode(decode_step: Callable, cache, rng, *, batch_size: int, length: int,
           num_steps: Optional[int] = None, temperature: float = 1.0,
           top_k: Optional[int] = None, top_p: Optional[float] = None,
           greedy: bool = False) -> jax.Array:
  """Int32 tokens [batch_size, length] sampled one position per step with a cache.

  decode_step(previous_token [B], position, cache) -> (logits [B, K], cache); the previous
  token is 0 at position 0, where the model reads its start token instead. num_steps
  (default length) samples only the first num_steps positions; the rest stay 0.
  """
  check_sampling_args(temperature=temperature, top_k=top_k, top_p=top_p)
  sampling = dict(temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy)

  def logits_fn(state):
    previous = jax.lax.dynamic_index_in_dim(state.tokens, jnp.maximum(state.position - 1, 0),
                                            axis=1, keepdims=False)
    return decode_step(previous, state.position, state.cache)

  state = _initial_state(rng, batch_size, length, cache)
  return _run(logits_fn, state, length if num_steps is None else num_steps, sampling)


def decode_full_recompute(tokens_to_logits: Callable, rng, *, batch_size: int, length: int,
                          num_steps: Optional[int] = None, temperature: float = 1.0,
                          top_k: Optional[int] = None, top_p: Optional[float] = None,
                          greedy: bool = False) -> jax.Array:
  """As `decode`, but every step recomputes the logits of the whole sequence.

  tokens_to_logits(tokens [B, L]) -> logits [B, L, K] must be causal; the not yet sampled
  positions hold 0 and do not affect the position read. Every step costs one full forward
  pass of length L (a fixed shape, so the loop compiles once).
  """
  check_sampling_args(temperature=temperature, top_k=top_k, top_p=top_p)
  sampling = dict(temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy)

  def logits_fn(state):
    logits = tokens_to_logits(state.tokens)
    return jax.lax.dynamic_index_in_dim(logits, state.position, axis=1, keepdims=False), None

  state = _initial_state(rng, batch_size, length, None)
  return _run(logits_fn, state, length if num_steps is None else num_steps, sampling)


METHODS = ("cached", "full")


def sample_prior(model, variables, rng, labels=None, condition=None, *, batch_size: int,
                 method: str = "cached", axis_name: Optional[str] = None, **sampling):
  """Int32 token grids [batch_size, *model.grid_shape] from a `TransformerPrior`.

  variables: the model's ({'params': ...}); labels int32 [batch_size] and condition
  (the top grid) as the model takes them. method 'cached' uses the model's decode and its
  key-value cache, 'full' recomputes the whole sequence each step. With axis_name (inside
  pmap) the key is folded with this device's axis_index. sampling: the keyword arguments
  of `decode` (num_steps, temperature, top_k, top_p, greedy).
  """
  if method not in METHODS:
    raise ValueError(f"method is {method!r}; use one of {METHODS}")
  if axis_name is not None:
    rng = jax.random.fold_in(rng, jax.lax.axis_index(axis_name))
  conditioning = dict(labels=labels, condition=condition)
  if method == "cached":
    def decode_step(previous, position, cache):
      return model.apply(variables, previous, position, cache, method=model.decode,
                         **conditioning)

    tokens = decode(decode_step, model.init_cache(batch_size), rng, batch_size=batch_size,
                    length=model.length, **sampling)
  else:
    def tokens_to_logits(tokens):
      grid = tokens.reshape(batch_size, *model.grid_shape)
      return model.apply(variables, grid, train=False, **conditioning)

    tokens = decode_full_recompute(tokens_to_logits, rng, batch_size=batch_size,
                                   length=model.length, **sampling)
  return tokens.reshape(batch_size, *model.grid_shape)


def make_sampler(model, *, batch_size: int, method: str = "cached", **sampling) -> Callable:
  """The jitted `sampler(variables, rng, labels=None, condition=None)` -> [B, H, W]."""
  return jax.jit(functools.partial(sample_prior, model, batch_size=batch_size, method=method,
                                   **sampling))


def make_pmap_sampler(model, *, per_device_batch: int, method: str = "cached",
                      axis_name: str = "devices", devices=None, **sampling) -> Callable:
  """The pmapped `sampler(variables, rng, labels=None, condition=None)`, built once.

  variables are broadcast (in_axes=None); the one rng is copied to every device, which folds
  in its axis_index, so devices draw different samples. labels [devices, per_device_batch]
  and the condition [devices, per_device_batch, ...] are split over devices. Returns int32
  [devices, per_device_batch, H, W]. devices: default jax.local_devices().
  """
  num_devices = len(devices) if devices is not None else jax.local_device_count()
  sample = functools.partial(sample_prior, model, batch_size=per_device_batch, method=method,
                             axis_name=axis_name, **sampling)
  # pmap needs one mapped argument even without labels, so the key goes in per device.
  mapped = jax.pmap(sample, axis_name=axis_name, in_axes=(None, 0, 0, 0), devices=devices)

  def sampler(variables, rng, labels=None, condition=None):
    rngs = jnp.broadcast_to(rng, (num_devices,) + rng.shape)
    return mapped(variables, rngs, labels, condition)

  return sampler
