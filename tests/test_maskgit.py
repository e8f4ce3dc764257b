"""Tests of vqjax/maskgit.py's pure functions: schedule values and masked counts, training
masks, the loss on masked positions only (zero gradient elsewhere), and parallel decoding
with a fake model: every token fixed after T steps, the schedule's masked count after each
step, given tokens kept, deterministic per key."""
import functools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vqjax import maskgit, sampling
from vqjax.models import maskgit_prior

MASK = 16  # the mask token of 16 codes


def test_schedules_match_the_paper():
  r = jnp.array([0.0, 0.25, 0.5, 1.0])
  np.testing.assert_allclose(maskgit.mask_ratio(r, "cosine"),
                             [1.0, math.cos(math.pi / 8), math.cos(math.pi / 4), 0.0],
                             atol=1e-6)
  np.testing.assert_allclose(maskgit.mask_ratio(r, "linear"), [1.0, 0.75, 0.5, 0.0])
  np.testing.assert_allclose(maskgit.mask_ratio(r, "square"), [1.0, 0.9375, 0.75, 0.0])
  assert set(maskgit.SCHEDULES) == set(maskgit_prior.MASK_SCHEDULES)
  with pytest.raises(ValueError, match="unknown mask schedule 'exp'; choose one of"):
    maskgit.mask_ratio(0.5, "exp")


def test_masked_count_is_the_ceiling_clipped_to_the_sequence():
  np.testing.assert_array_equal(maskgit.masked_count(jnp.array([0.0, 0.01, 0.5, 0.9, 1.0]), 16),
                                [1, 1, 8, 15, 16])


def test_random_mask_has_exactly_the_counts():
  counts = jnp.array([0, 1, 5, 16])
  mask = maskgit.random_mask(jax.random.PRNGKey(0), counts, 16)
  chex.assert_shape(mask, (4, 16))
  np.testing.assert_array_equal(mask.sum(-1), counts)


def test_mask_tokens_masks_ceil_gamma_r_n_tokens():
  tokens = jnp.arange(64 * 16, dtype=jnp.int32).reshape(64, 16) % MASK
  masked, mask = maskgit.mask_tokens(jax.random.PRNGKey(1), tokens, mask_token_id=MASK)
  np.testing.assert_array_equal(masked == MASK, mask)
  np.testing.assert_array_equal(jnp.where(mask, tokens, masked), tokens)
  counts = np.asarray(mask.sum(-1))
  assert counts.min() >= 1 and counts.max() <= 16
  # The cosine schedule masks more than half the tokens on average (E[cos(pi r / 2)] = 2/pi).
  assert 0.5 < counts.mean() / 16 < 0.8


def test_loss_is_on_masked_positions_only():
  rng = np.random.default_rng(0)
  logits = jnp.asarray(rng.normal(size=(2, 16, 8)), jnp.float32)
  tokens = jnp.asarray(rng.integers(0, 8, (2, 16)), jnp.int32)
  mask = jnp.asarray(rng.random((2, 16)) < 0.5)
  for smoothing in (0.0, 0.1):
    loss_fn = functools.partial(maskgit.masked_cross_entropy, tokens=tokens, mask=mask,
                                label_smoothing=smoothing)
    grads = jax.grad(loss_fn)(logits)
    assert np.all(np.asarray(grads)[~np.asarray(mask)] == 0)
    assert np.abs(np.asarray(grads)[np.asarray(mask)]).max() > 0
  nll = -jnp.take_along_axis(jax.nn.log_softmax(logits), tokens[..., None], -1)[..., 0]
  np.testing.assert_allclose(maskgit.masked_cross_entropy(logits, tokens, mask),
                             nll[mask].mean(), rtol=1e-6)
  with pytest.raises(ValueError, match="0 <= label_smoothing < 1"):
    maskgit.masked_cross_entropy(logits, tokens, mask, label_smoothing=1.0)


def _fake_logits(tokens, step):
  """Logits [B, L, 16] that depend on the visible tokens (a fixed random map of them)."""
  del step
  table = jax.random.normal(jax.random.PRNGKey(5), (MASK + 1, 16))
  return jnp.cumsum(table[tokens], axis=1) + jnp.arange(16.0)


SAMPLE = functools.partial(sampling.sample_logits, temperature=1.0)


def test_decode_fixes_every_token_after_t_steps_and_is_deterministic_per_key():
  start = jnp.full((4, 16), MASK, jnp.int32)
  decode = jax.jit(functools.partial(maskgit.decode, _fake_logits, sample_fn=SAMPLE,
                                     mask_token_id=MASK, num_steps=8))
  tokens = decode(start, jax.random.PRNGKey(0))
  chex.assert_shape(tokens, (4, 16))
  assert tokens.dtype == jnp.int32
  assert np.all((np.asarray(tokens) >= 0) & (np.asarray(tokens) < MASK))
  np.testing.assert_array_equal(tokens, decode(start, jax.random.PRNGKey(0)))
  assert (tokens != decode(start, jax.random.PRNGKey(1))).any()


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_each_step_keeps_the_schedules_masked_count_and_never_remasks(schedule):
  state = maskgit.DecodeState(jnp.zeros((), jnp.int32), jnp.full((3, 16), MASK, jnp.int32),
                              jnp.full((3,), 16, jnp.int32), jax.random.PRNGKey(2))
  step = jax.jit(functools.partial(maskgit.decode_step, tokens_to_logits=_fake_logits,
                                   sample_fn=SAMPLE, mask_token_id=MASK, num_steps=8,
                                   schedule=schedule))
  counts = []
  for t in range(8):
    before = np.asarray(state.tokens)
    state = step(state)
    after = np.asarray(state.tokens)
    fixed = before != MASK
    np.testing.assert_array_equal(after[fixed], before[fixed])  # fixed tokens stay
    counts.append((after == MASK).sum(-1))
    expected = 0 if t == 7 else max(1, math.floor(16 * float(maskgit.mask_ratio((t + 1) / 8,
                                                                             schedule))))
    np.testing.assert_array_equal(counts[-1], min(expected, 16 - t - 1) if t < 7 else 0)
  if schedule == "cosine":
    assert [int(c[0]) for c in counts] == [15, 14, 13, 11, 8, 6, 3, 0]


def test_decode_keeps_given_tokens_and_fills_only_the_masked():
  given = jnp.asarray(np.random.default_rng(3).integers(0, MASK, (2, 16)), jnp.int32)
  hole = jnp.arange(16) >= 10
  start = jnp.where(hole, MASK, given)
  tokens = maskgit.decode(_fake_logits, start, jax.random.PRNGKey(4), sample_fn=SAMPLE,
                          mask_token_id=MASK, num_steps=4)
  np.testing.assert_array_equal(tokens[:, :10], given[:, :10])
  assert not (tokens == MASK).any()


def test_greedy_decoding_with_no_choice_noise_keeps_the_most_confident():
  """With choice temperature 0 the kept tokens are the most likely ones."""
  # Token 0 is the argmax everywhere, most likely at position 0, least at position 3.
  logits = jnp.stack([jnp.array([3.0, 2.0, 1.0, 0.5]), jnp.zeros(4)], axis=-1)[None]

  state = maskgit.DecodeState(jnp.zeros((), jnp.int32), jnp.full((1, 4), 2, jnp.int32),
                              jnp.array([4]), jax.random.PRNGKey(0))
  state = maskgit.decode_step(state, lambda tokens, step: logits,
                              sample_fn=functools.partial(sampling.sample_logits, greedy=True),
                              mask_token_id=2, num_steps=2, schedule="linear",
                              choice_temperature=0.0)
  # After step 1 of 2 (linear: half masked) the two least confident positions stay masked.
  np.testing.assert_array_equal(state.tokens, [[0, 0, 2, 2]])


def test_bad_decoding_arguments_name_the_fix():
  with pytest.raises(ValueError, match="maskgit_steps is 0"):
    maskgit.check_decode_args(num_steps=0, choice_temperature=1.0, schedule="cosine")
  with pytest.raises(ValueError, match="choice_temperature is -1"):
    maskgit.check_decode_args(num_steps=8, choice_temperature=-1.0, schedule="cosine")


def test_pairwise_ranks_equal_a_stable_argsort_of_the_argsort():
  scores = jax.random.uniform(jax.random.key(3), (4, 49))
  scores = scores.at[0, 3].set(scores[0, 7]).at[1, :].set(0.5)  # ties within a row
  expected = jnp.argsort(jnp.argsort(scores, axis=-1, stable=True), axis=-1, stable=True)
  np.testing.assert_array_equal(maskgit._ranks(scores), expected)  # pylint: disable=protected-access
