"""Tests of vqjax/models/transformer_prior.py: causal next-token logits over the raster
grid, cached decoding equal to full recomputation, and conditioning on labels and on a
VQ-VAE-2 top grid that leaves the bottom grid causal."""
import functools

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vqjax.models import TinyTransformerPrior

BATCH = 2
LENGTH = 16  # TinyTransformerPrior's 4x4 grid
TOP_GRID = (2, 2)


def init(model, tokens, **conditioning):
  """The model's variables, initialized under jit (eager flax runs op by op, slowly)."""
  return jax.jit(functools.partial(model.init, train=False))(jax.random.PRNGKey(0), tokens,
                                                             **conditioning)


def shapes_of_init(model, tokens, **conditioning):
  """Traces init without computing anything, which is enough to raise input errors."""
  return jax.eval_shape(functools.partial(model.init, train=False), jax.random.PRNGKey(0),
                        tokens, **conditioning)


def random_tokens(seed, shape=(BATCH, 4, 4), codes=16):
  return jax.random.randint(jax.random.PRNGKey(seed), shape, 0, codes, dtype=jnp.int32)


@pytest.fixture(scope="module")
def conditional():
  """A prior with class labels, a top-grid condition and dropout, its variables and inputs."""
  model = TinyTransformerPrior(num_classes=3, condition_codebook_size=5, dropout_rate=0.5)
  labels = jnp.array([0, 2], jnp.int32)
  condition = random_tokens(1, (BATCH, *TOP_GRID), codes=5)
  variables = init(model, random_tokens(0), labels=labels, condition=condition)
  apply = jax.jit(lambda tokens, labels, condition: model.apply(
      variables, tokens, labels=labels, condition=condition, train=False))
  return model, variables, apply, labels, condition


def test_logits_shape_and_dtype_with_bfloat16_compute():
  model = TinyTransformerPrior(dtype=jnp.bfloat16)
  tokens = random_tokens(0)
  variables = init(model, tokens)
  logits = jax.jit(functools.partial(model.apply, train=False))(variables, tokens)
  chex.assert_shape(logits, (BATCH, LENGTH, 16))
  assert logits.dtype == jnp.float32
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables))


@pytest.mark.parametrize("position", [0, 5, 15])
def test_changing_token_t_leaves_logits_up_to_t_unchanged(conditional, position):
  _, _, apply, labels, condition = conditional
  tokens = random_tokens(2)
  flat = tokens.reshape(BATCH, -1)
  changed = flat.at[:, position].set((flat[:, position] + 1) % 16).reshape(tokens.shape)
  before, after = apply(tokens, labels, condition), apply(changed, labels, condition)
  chex.assert_trees_all_close(before[:, :position + 1], after[:, :position + 1], atol=1e-6)
  if position + 1 < LENGTH:  # and the next position reads it
    assert np.abs(before[:, position + 1] - after[:, position + 1]).max() > 1e-4


def test_cached_decoding_equals_full_recomputation(conditional):
  model, variables, apply, labels, condition = conditional
  tokens = random_tokens(3)
  flat = tokens.reshape(BATCH, -1)

  def step(cache, position):
    previous = flat[:, jnp.maximum(position - 1, 0)]
    logits, cache = model.apply(variables, previous, position, cache, labels=labels,
                                condition=condition, method=model.decode)
    return cache, logits

  _, logits = jax.lax.scan(step, model.init_cache(BATCH), jnp.arange(LENGTH))
  chex.assert_trees_all_close(jnp.moveaxis(logits, 0, 1), apply(tokens, labels, condition),
                              atol=1e-5)


def test_logits_depend_on_the_label(conditional):
  _, _, apply, labels, condition = conditional
  tokens = random_tokens(4)
  other = (labels + 1) % 3
  difference = np.abs(apply(tokens, labels, condition) - apply(tokens, other, condition))
  assert difference[:, 0].max() > 1e-4  # even the first token's distribution


def test_bottom_prior_uses_the_top_grid_and_stays_causal(conditional):
  _, _, apply, labels, condition = conditional
  tokens = random_tokens(5)
  other_top = condition.at[:, 1, 1].set((condition[:, 1, 1] + 1) % 5)
  difference = np.abs(apply(tokens, labels, condition) - apply(tokens, labels, other_top))
  # Top cell (1, 1) sits above bottom rows 2-3, columns 2-3: raster positions 10, 11, 14, 15.
  assert difference[:, :10].max() < 1e-6  # earlier bottom positions do not see it
  assert difference[:, 10].max() > 1e-4


def test_dropout_only_in_training(conditional):
  model, variables, apply, labels, condition = conditional
  tokens = random_tokens(6)
  train = jax.jit(lambda tokens, rng: model.apply(variables, tokens, labels=labels,
                                                  condition=condition, train=True,
                                                  rngs={"dropout": rng}))
  evaluation = apply(tokens, labels, condition)  # deterministic: the other tests compare it
  assert np.abs(train(tokens, jax.random.PRNGKey(1)) - evaluation).max() > 1e-3


def test_errors_say_what_to_pass():
  model = TinyTransformerPrior(num_classes=3)
  with pytest.raises(ValueError, match="pass labels"):
    shapes_of_init(model, random_tokens(0))
  with pytest.raises(ValueError, match="grid_shape=\\(2, 8\\)"):
    shapes_of_init(model, random_tokens(0, (BATCH, 2, 8)), labels=jnp.zeros(BATCH, jnp.int32))
  bottom = TinyTransformerPrior(condition_codebook_size=5)
  with pytest.raises(ValueError, match="does not divide"):
    shapes_of_init(bottom, random_tokens(0), condition=random_tokens(0, (BATCH, 3, 3), codes=5))
  with pytest.raises(ValueError, match="not divisible by num_heads"):
    shapes_of_init(TinyTransformerPrior(num_heads=5), random_tokens(0))


def test_per_position_applies_a_layer_with_the_leading_axes_flattened():
  from vqjax.models.transformer_prior import per_position
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 4, 5))
  dense = nn.Dense(6)
  params = dense.init(jax.random.PRNGKey(1), x)
  out = per_position(lambda h: dense.apply(params, h), x)
  chex.assert_shape(out, (2, 3, 4, 6))
  chex.assert_trees_all_close(out, dense.apply(params, x), atol=1e-6)
  merge = nn.DenseGeneral(7, axis=(-2, -1))
  merge_params = merge.init(jax.random.PRNGKey(2), x)
  chex.assert_trees_all_close(per_position(lambda h: merge.apply(merge_params, h), x, 2),
                              merge.apply(merge_params, x), atol=1e-6)
