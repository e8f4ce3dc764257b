"""Autoregressive sampling of token grids from a prior, each sample one compiled program.

In the shape of maskgit's decoder: the model comes in as a callback and the loop is a
`lax.fori_loop` over positions carrying a `SamplingState` (a flax.struct.dataclass), so a
whole sample is one XLA program with no Python loop per token.

  decode(decode_step, cache, rng, ...)   the one loop: decode_step(tokens [B, L], position,
                                         cache) -> (logits [B, K] of position, cache),
                                         positions >= position of tokens still 0.
  recompute_step(tokens_to_logits)       the decode_step of a model with no cache:
                                         tokens_to_logits(tokens [B, L]) -> logits [B, L, K]
                                         (causal) recomputed over the whole sequence.
  sample_prior(prior, variables, rng, labels, condition, batch_size=, axis_name=None, ...)
  make_sampler(prior, batch_size=, ...)  (jitted) int32 grids [B, *prior.grid_shape].

Classifier-free guidance (Ho & Salimans 2022), for every class-conditional prior trained
with a null class (label_dropout_rate > 0, vqjax.models.conditioning): guidance_scale s
samples from uncond + s * (cond - uncond) (guided_logits), the conditional and the
null-class half in one batch of 2B (the transformer's key-value cache holds both); s = 1
is plain conditional sampling, s = 0 unconditional; guidance_ramp ramps s linearly from 1
over the positions (MaskGIT: the steps), as LlamaGen does. A MaskGIT prior
(vqjax.models.MaskGITPrior) is decoded in parallel by vqjax.maskgit.decode, every masked
token drawn by the same sample_logits.

Every position is drawn with `sample_logits` (temperature, top-k, top-p; greedy argmax when
greedy=True or temperature=0) from keys split off the one rng, so a key gives the same
tokens on every run, with or without a cache, up to float rounding.

A prior is any module called as `prior(tokens [B, h, w], *, labels, condition, train)` ->
logits [B, h*w, K], with a `grid_shape` (h, w). A prior with a key-value cache, one that has
`init_cache(batch_size)` and `decode(previous_token [B], position, cache, *, labels,
condition)` -> (logits [B, K], cache) (vqjax.models.TransformerPrior), is sampled one
position per step with its cache; any other (vqjax.models.GatedPixelCNN) recomputes the
whole grid at every step. The pmapped sampler is vqjax.train.parallel.prior_sample_step.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Optional

import flax
import jax
import jax.numpy as jnp

from vqjax import guidance, maskgit


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


def check_batch_size(batch_size: int) -> None:
  if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
    raise ValueError(f"batch_size is {batch_size!r}; a sampler draws batch_size >= 1 grids "
                     "at a time (e.g. batch_size=8)")


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


def decode(decode_step: Callable, cache, rng, *, batch_size: int, length: int,
           num_steps: Optional[int] = None, temperature: float = 1.0,
           top_k: Optional[int] = None, top_p: Optional[float] = None,
           greedy: bool = False) -> jax.Array:
  """Int32 tokens [batch_size, length] sampled one position per step.

  decode_step(tokens [B, L], position, cache) -> (logits [B, K] of position, cache); tokens
  holds the positions sampled so far and 0 at the rest. num_steps (default length) samples
  only the first num_steps positions; the rest stay 0.
  """
  check_batch_size(batch_size)
  if num_steps is not None and not 1 <= num_steps <= length:
    raise ValueError(f"num_steps is {num_steps}; sample 1 to {length} positions, or None "
                     "for all of them")
  check_sampling_args(temperature=temperature, top_k=top_k, top_p=top_p)
  sampling = dict(temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy)

  def step(_, state):
    logits, cache = decode_step(state.tokens, state.position, state.cache)
    rng, draw_rng = jax.random.split(state.rng)
    token = sample_logits(draw_rng, logits, **sampling)
    tokens = jax.lax.dynamic_update_index_in_dim(state.tokens, token, state.position, axis=1)
    return SamplingState(state.position + 1, tokens, cache, rng)

  state = SamplingState(jnp.zeros((), jnp.int32),
                        jnp.zeros((batch_size, length), jnp.int32), cache, rng)
  return jax.lax.fori_loop(0, length if num_steps is None else num_steps, step, state).tokens


def recompute_step(tokens_to_logits: Callable) -> Callable:
  """The decode_step of a model without a cache: every step runs
  tokens_to_logits(tokens [B, L]) -> logits [B, L, K] over the whole fixed-length sequence
  (so the loop compiles once) and reads the position's row. The model must be causal: the
  positions not yet sampled hold 0 and must not affect the row read."""
  def decode_step(tokens, position, cache):
    logits = tokens_to_logits(tokens)
    return jax.lax.dynamic_index_in_dim(logits, position, axis=1, keepdims=False), cache

  return decode_step


def has_cache(prior) -> bool:
  """Whether the prior decodes one position per step with a key-value cache (it has
  init_cache and decode, as vqjax.models.TransformerPrior), or recomputes every step."""
  return callable(getattr(prior, "init_cache", None)) and callable(
      getattr(prior, "decode", None))


def _logits_fn(prior, variables, *, batch_size: int, labels, condition) -> Callable:
  """tokens [batch_size, L] -> the prior's logits [batch_size, L, K] over the grid."""
  def tokens_to_logits(tokens):
    grid = tokens.reshape(batch_size, *prior.grid_shape)
    return prior.apply(variables, grid, train=False, labels=labels, condition=condition)

  return tokens_to_logits


def prior_decode_step(prior, variables, *, batch_size: int, labels=None, condition=None,
                      guidance_scale: Optional[float] = None,
                      guidance_ramp: bool = False) -> tuple[Callable, Any]:
  """(decode_step, initial cache) of a causal prior (see the module docstring) for
  `decode`: its cached decode when it has one, else recomputation of its logits over the
  grid. With guidance_scale, each step runs the conditional and the null-class half in one
  batch of 2 * batch_size (a cache of that batch) and returns the guided logits."""
  guidance.check_guidance(prior, guidance_scale)
  if guidance_scale is not None:
    labels, condition = guidance.both_halves(prior, labels, condition)
    step, cache = prior_decode_step(prior, variables, batch_size=2 * batch_size,
                                    labels=labels, condition=condition)
    length = prior.grid_shape[0] * prior.grid_shape[1]

    def guided_step(tokens, position, cache):
      logits, cache = step(jnp.concatenate([tokens, tokens]), position, cache)
      progress = (position + 1).astype(jnp.float32) / length
      scale = guidance.guidance_scale_at(guidance_scale, progress, guidance_ramp)
      return guidance.guided_logits(logits, scale), cache

    return guided_step, cache
  conditioning_args = dict(labels=labels, condition=condition)
  if has_cache(prior):
    def cached_step(tokens, position, cache):
      previous = jax.lax.dynamic_index_in_dim(tokens, jnp.maximum(position - 1, 0), axis=1,
                                              keepdims=False)  # unread at position 0
      return prior.apply(variables, previous, position, cache, method=prior.decode,
                         **conditioning_args)

    return cached_step, prior.init_cache(batch_size)
  return recompute_step(_logits_fn(prior, variables, batch_size=batch_size,
                                   **conditioning_args)), None


def masked_tokens_to_logits(prior, variables, *, batch_size: int, num_steps: int,
                            labels=None, condition=None, guidance_scale: Optional[float] = None,
                            guidance_ramp: bool = False) -> Callable:
  """The tokens_to_logits(tokens [B, L], step) of vqjax.maskgit.decode for a MaskGIT prior;
  with guidance_scale, both halves in one batch of 2 * batch_size, the scale ramped over
  the num_steps steps with guidance_ramp."""
  guidance.check_guidance(prior, guidance_scale)
  if guidance_scale is None:
    logits_fn = _logits_fn(prior, variables, batch_size=batch_size, labels=labels,
                           condition=condition)
    return lambda tokens, step: logits_fn(tokens)
  labels, condition = guidance.both_halves(prior, labels, condition)
  logits_fn = _logits_fn(prior, variables, batch_size=2 * batch_size, labels=labels,
                         condition=condition)

  def guided(tokens, step):
    progress = (step + 1).astype(jnp.float32) / num_steps
    scale = guidance.guidance_scale_at(guidance_scale, progress, guidance_ramp)
    return guidance.guided_logits(logits_fn(jnp.concatenate([tokens, tokens])), scale)

  return guided


MASKGIT_OPTIONS = ("maskgit_steps", "choice_temperature", "mask_schedule")


def sample_prior(prior, variables, rng, labels=None, condition=None, *, batch_size: int,
                 axis_name: Optional[str] = None, guidance_scale: Optional[float] = None,
                 guidance_ramp: bool = False, maskgit_steps: Optional[int] = None,
                 choice_temperature: Optional[float] = None,
                 mask_schedule: Optional[str] = None, **sampling) -> jax.Array:
  """Int32 token grids [batch_size, *prior.grid_shape] sampled from a prior.

  variables: the prior's ({'params': ...}); labels int32 [batch_size] and condition (the
  top grid) as the prior takes them. With axis_name (inside pmap) the key is folded with
  this device's axis_index, so devices draw different samples. sampling: the keyword
  arguments of `decode` (num_steps, temperature, top_k, top_p, greedy). guidance_scale s
  (None: none) samples from uncond + s * (cond - uncond) (guidance_ramp: s ramped from 1
  over the positions or steps). A MaskGIT prior (vqjax.maskgit.is_masked_prior) decodes
  in maskgit_steps parallel steps (default 8) with choice_temperature (default 4.5) and
  mask_schedule (default the prior's); these are MaskGIT's options only.
  """
  if axis_name is not None:
    rng = jax.random.fold_in(rng, jax.lax.axis_index(axis_name))
  height, width = prior.grid_shape
  inputs = dict(labels=labels, condition=condition, guidance_scale=guidance_scale,
                guidance_ramp=guidance_ramp)
  if maskgit.is_masked_prior(prior):
    _check_kind_of_options(prior, sampling)
    sampling.pop("num_steps", None)
    return _sample_masked(prior, variables, rng, batch_size=batch_size,
                          maskgit_steps=8 if maskgit_steps is None else maskgit_steps,
                          choice_temperature=4.5 if choice_temperature is None
                          else choice_temperature,
                          schedule=mask_schedule or prior.mask_schedule, inputs=inputs,
                          **sampling).reshape(batch_size, height, width)
  _check_kind_of_options(prior, dict(maskgit_steps=maskgit_steps, mask_schedule=mask_schedule,
                                     choice_temperature=choice_temperature))
  decode_step, cache = prior_decode_step(prior, variables, batch_size=batch_size, **inputs)
  tokens = decode(decode_step, cache, rng, batch_size=batch_size, length=height * width,
                  **sampling)
  return tokens.reshape(batch_size, height, width)


def _sample_masked(prior, variables, rng, *, batch_size: int, maskgit_steps: int,
                   choice_temperature: float, schedule: str, inputs: dict,
                   temperature: float = 1.0, top_k: Optional[int] = None,
                   top_p: Optional[float] = None, greedy: bool = False) -> jax.Array:
  """Int32 [batch_size, L]: maskgit.decode of a fully masked grid."""
  check_batch_size(batch_size)
  check_sampling_args(temperature=temperature, top_k=top_k, top_p=top_p)
  tokens_to_logits = masked_tokens_to_logits(prior, variables, batch_size=batch_size,
                                             num_steps=maskgit_steps, **inputs)
  sample_fn = functools.partial(sample_logits, temperature=temperature, top_k=top_k,
                                top_p=top_p, greedy=greedy)
  start = jnp.full((batch_size, prior.length), prior.mask_token_id, jnp.int32)
  return maskgit.decode(tokens_to_logits, start, rng, sample_fn=sample_fn,
                        mask_token_id=prior.mask_token_id, num_steps=maskgit_steps,
                        schedule=schedule, choice_temperature=choice_temperature)


def check_prior_sampling_args(prior, **sampling) -> None:
  """Raises a ValueError naming the fix for bad sampling arguments of this prior."""
  check_sampling_args(temperature=sampling.get("temperature", 1.0),
                      top_k=sampling.get("top_k"), top_p=sampling.get("top_p"))
  guidance.check_guidance(prior, sampling.get("guidance_scale"))
  _check_kind_of_options(prior, sampling)
  if maskgit.is_masked_prior(prior):
    steps, choice = sampling.get("maskgit_steps"), sampling.get("choice_temperature")
    maskgit.check_decode_args(num_steps=8 if steps is None else steps,
                              choice_temperature=4.5 if choice is None else choice,
                              schedule=sampling.get("mask_schedule"))


def _check_kind_of_options(prior, options: dict) -> None:
  """Raises a ValueError naming the fix for options of the other kind of prior: num_steps
  (positions) for a MaskGIT prior, MASKGIT_OPTIONS for a causal one."""
  if maskgit.is_masked_prior(prior):
    if options.get("num_steps") is not None:
      raise ValueError("num_steps (positions) is an option of causal priors; a MaskGIT prior "
                       "decodes every position in maskgit_steps steps")
    return
  given = [name for name in MASKGIT_OPTIONS if options.get(name) is not None]
  if given:
    raise ValueError(f"{', '.join(given)} are options of MaskGIT priors, but this prior is "
                     f"a {type(prior).__name__} (sampled position by position); drop them")


def make_sampler(prior, *, batch_size: int, **sampling) -> Callable:
  """The jitted `sampler(variables, rng, labels=None, condition=None)` -> int32 grids
  [batch_size, *prior.grid_shape]; sampling: sample_prior's keyword arguments, checked
  here, and the labels at each call (in [0, num_classes)). .lower compiles ahead of time."""
  check_batch_size(batch_size)
  check_prior_sampling_args(prior, **sampling)
  jitted = jax.jit(functools.partial(sample_prior, prior, batch_size=batch_size, **sampling))

  def sampler(variables, rng, labels=None, condition=None):
    guidance.check_labels(prior, labels)
    return jitted(variables, rng, labels, condition)

  sampler.lower = jitted.lower
  return sampler
