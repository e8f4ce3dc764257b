"""MaskGIT (Chang et al. 2022): mask schedules, masking for training and the parallel
decoding loop, as pure functions over flat token sequences [B, L].

    mask_ratio(r, schedule)              gamma(r): cosine cos(pi r / 2), linear 1 - r,
                                         square 1 - r^2 (SCHEDULES)
    masked_count(ratio, length)          ceil(ratio * length) clipped to [1, length]
    random_mask(rng, counts, length)     bool [B, L] with exactly counts[b] True per row
    mask_tokens(rng, tokens, ...)        training: per example r ~ U(0, 1), ceil(gamma(r) L)
                                         tokens replaced by mask_token_id
    masked_cross_entropy(logits, ...)    the loss, on the masked positions only
    decode(tokens_to_logits, tokens, rng, sample_fn=, ...)
                                         maskgit's parallel_decode: one lax.fori_loop of
                                         decode_step over a DecodeState

The model comes in as the callback tokens_to_logits(tokens [B, L], step) -> logits
[B, L, K] (step: the int32 decoding step, for guidance ramps) and the token sampler as
sample_fn(rng, logits [B, L, K]) -> int32 [B, L] (vqjax.sampling.sample_logits with its
temperature and top-k), so this module needs neither. vqjax.sampling wires MaskGIT priors
(vqjax.models.MaskGITPrior) to it.
"""
from __future__ import annotations

import math
from typing import Callable

import flax
import jax
import jax.numpy as jnp
import optax

SCHEDULES = {
    "cosine": lambda r: jnp.cos(0.5 * math.pi * r),
    "linear": lambda r: 1.0 - r,
    "square": lambda r: 1.0 - r ** 2,
}


def check_schedule(schedule: str) -> None:
  if schedule not in SCHEDULES:
    raise ValueError(f"unknown mask schedule {schedule!r}; choose one of "
                     f"{', '.join(map(repr, SCHEDULES))}")


def is_masked_prior(prior) -> bool:
  """Whether a prior predicts masked tokens (it has a mask_token_id, as MaskGITPrior)."""
  return getattr(prior, "mask_token_id", None) is not None


def mask_ratio(r, schedule: str = "cosine"):
  """gamma(r) in [0, 1] for r in [0, 1]: the fraction of tokens masked, 1 at r = 0."""
  check_schedule(schedule)
  return jnp.clip(SCHEDULES[schedule](jnp.asarray(r, jnp.float32)), 0.0, 1.0)


def masked_count(ratio, length: int):
  """Int32 ceil(ratio * length), at least 1 and at most length."""
  count = jnp.ceil(jnp.asarray(ratio, jnp.float32) * length).astype(jnp.int32)
  return jnp.clip(count, 1, length)


# Rows up to this long are ranked by comparing every pair rather than sorting: XLA:CPU runs
# a sort on its shared thread pool, where pmapped devices blocked in an all-reduce can
# starve it (an intermittent deadlock of the train step on several host devices).
PAIRWISE_RANK_MAX_LENGTH = 1024


def _ranks(scores):
  """Int [B, L]: each score's rank in its row (0: lowest; ties broken by position), as a
  stable argsort of the argsort gives it."""
  length = scores.shape[-1]
  if length > PAIRWISE_RANK_MAX_LENGTH:
    return jnp.argsort(jnp.argsort(scores, axis=-1), axis=-1)
  position = jnp.arange(length)
  before = (scores[:, None, :] < scores[:, :, None]) | (
      (scores[:, None, :] == scores[:, :, None]) & (position[None, :] < position[:, None]))
  return jnp.sum(before, axis=-1, dtype=jnp.int32)


def _lowest(scores, counts):
  """Bool [B, L]: the counts[b] lowest scores of each row (ties broken by position)."""
  return _ranks(scores) < jnp.asarray(counts)[:, None]


def random_mask(rng, counts, length: int):
  """Bool [B, L] with exactly counts[b] True at uniformly random positions of row b."""
  counts = jnp.asarray(counts, jnp.int32)
  return _lowest(jax.random.uniform(rng, (counts.shape[0], length)), counts)


def mask_tokens(rng, tokens, *, mask_token_id: int, schedule: str = "cosine"):
  """(masked tokens, mask) of int32 tokens [B, L]: per example r ~ U(0, 1), and
  masked_count(gamma(r), L) random positions set to mask_token_id (mask: bool [B, L])."""
  ratio_rng, position_rng = jax.random.split(rng)
  ratios = mask_ratio(jax.random.uniform(ratio_rng, tokens.shape[:1]), schedule)
  mask = random_mask(position_rng, masked_count(ratios, tokens.shape[1]), tokens.shape[1])
  return jnp.where(mask, mask_token_id, tokens), mask


def masked_cross_entropy(logits, tokens, mask, *, label_smoothing: float = 0.0):
  """Mean cross-entropy (nats) of logits [B, L, K] against tokens [B, L] over the
  positions where mask [B, L] is True; the others get no gradient. label_smoothing mixes
  the targets with the uniform distribution (maskgit: 0.1)."""
  if not 0 <= label_smoothing < 1:
    raise ValueError(f"label_smoothing is {label_smoothing}; use 0 <= label_smoothing < 1 "
                     "(maskgit uses 0.1)")
  logits = logits.astype(jnp.float32)
  targets = jax.nn.one_hot(tokens, logits.shape[-1])
  if label_smoothing:
    targets = optax.smooth_labels(targets, label_smoothing)
  per_token = optax.softmax_cross_entropy(logits, targets)
  weights = mask.astype(jnp.float32)
  return jnp.sum(per_token * weights) / jnp.maximum(jnp.sum(weights), 1.0)


@flax.struct.dataclass
class DecodeState:
  step: jax.Array         # int32 scalar: the step run next
  tokens: jax.Array       # int32 [B, L]: fixed tokens, mask_token_id where still masked
  num_unknown: jax.Array  # int32 [B]: masked tokens at the start (N of the schedule)
  rng: jax.Array


def remasked_count(step, num_steps: int, num_unknown, still_unknown, schedule: str):
  """Int32 [B]: how many of the still_unknown tokens stay masked after `step`: floor(N *
  gamma((step + 1) / T)), at least 1 and below still_unknown (each step fixes a token),
  0 after the last step."""
  ratio = (jnp.asarray(step, jnp.float32) + 1.0) / num_steps
  count = jnp.floor(num_unknown * mask_ratio(ratio, schedule)).astype(jnp.int32)
  count = jnp.clip(jnp.maximum(count, 1), 0, jnp.maximum(still_unknown - 1, 0))
  return jnp.where(step >= num_steps - 1, 0, count)


def check_decode_args(*, num_steps: int, choice_temperature: float,
                      schedule: str | None) -> None:
  if not isinstance(num_steps, int) or num_steps < 1:
    raise ValueError(f"maskgit_steps is {num_steps!r}; decode in >= 1 steps (maskgit: 8-12)")
  if choice_temperature < 0:
    raise ValueError(f"choice_temperature is {choice_temperature}; use >= 0 (maskgit: 4.5)")
  if schedule is not None:
    check_schedule(schedule)


def decode_step(state: DecodeState, tokens_to_logits: Callable, *, sample_fn: Callable,
                mask_token_id: int, num_steps: int, schedule: str = "cosine",
                choice_temperature: float = 4.5) -> DecodeState:
  """One step of parallel decoding: sample every masked token, score each by its
  log-probability plus Gumbel noise scaled by choice_temperature * (1 - (step + 1) / T),
  and re-mask the remasked_count lowest-scoring; fixed tokens score +inf (never re-masked)."""
  logits = tokens_to_logits(state.tokens, state.step).astype(jnp.float32)
  rng, sample_rng, choice_rng = jax.random.split(state.rng, 3)
  unknown = state.tokens == mask_token_id
  sampled = jnp.where(unknown, sample_fn(sample_rng, logits), state.tokens)
  log_probs = jnp.take_along_axis(jax.nn.log_softmax(logits), sampled[..., None], -1)[..., 0]
  confidence = jnp.where(unknown, log_probs, jnp.inf)
  ratio = (state.step.astype(jnp.float32) + 1.0) / num_steps
  noise = choice_temperature * (1.0 - ratio) * jax.random.gumbel(choice_rng, confidence.shape)
  counts = remasked_count(state.step, num_steps, state.num_unknown,
                          jnp.sum(unknown, axis=-1), schedule)
  remask = _lowest(confidence + noise, counts)
  return DecodeState(state.step + 1, jnp.where(remask, mask_token_id, sampled),
                     state.num_unknown, rng)


def decode(tokens_to_logits: Callable, tokens, rng, *, sample_fn: Callable, mask_token_id: int,
           num_steps: int = 8, schedule: str = "cosine",
           choice_temperature: float = 4.5) -> jax.Array:
  """Int32 tokens [B, L] with every mask_token_id of `tokens` filled in num_steps steps
  (one compiled loop); tokens given (not mask_token_id) stay as they are."""
  check_decode_args(num_steps=num_steps, choice_temperature=choice_temperature,
                    schedule=schedule)
  tokens = jnp.asarray(tokens, jnp.int32)
  state = DecodeState(jnp.zeros((), jnp.int32), tokens,
                      jnp.sum(tokens == mask_token_id, axis=-1).astype(jnp.int32), rng)

  def body(_, state):
    return decode_step(state, tokens_to_logits, sample_fn=sample_fn,
                       mask_token_id=mask_token_id, num_steps=num_steps, schedule=schedule,
                       choice_temperature=choice_temperature)

  return jax.lax.fori_loop(0, num_steps, body, state).tokens
