"""Tests of vqjax/sampling.py, on its one path for both priors: the transformer's cached
sampler equals full recomputation, the PixelCNN recomputes; greedy limits, top-k and top-p
restrictions, determinism per key, class-conditional and top-grid conditioned sampling,
and the pmapped sampler (vqjax.train.parallel.prior_sample_step)'s per-device keys."""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vqjax import sampling
from vqjax.models import TinyGatedPixelCNN, TinyTransformerPrior
from vqjax.train import parallel

BATCH = 8
KEY = jax.random.PRNGKey(7)
# One layer: every sampler configuration is a separate compilation.
Prior = functools.partial(TinyTransformerPrior, num_layers=1)
PRIORS = {"transformer": Prior(num_classes=3), "pixelcnn": TinyGatedPixelCNN(num_classes=3)}


def init(model, batch_size, **conditioning):
  """Jitted init, with weights scaled up so that samples are far from uniform (the
  PixelCNN's logits are spread enough at init: scaled, they would be nearly one-hot)."""
  scale = 4 if isinstance(model, TinyTransformerPrior.func) else 1

  def scaled_init(rng):
    tokens = jnp.zeros((batch_size, *model.grid_shape), jnp.int32)
    variables = model.init(rng, tokens, train=False, **conditioning)
    return jax.tree.map(lambda x: scale * x, variables)

  return jax.jit(scaled_init)(jax.random.PRNGKey(0))


@pytest.fixture(scope="module", params=list(PRIORS))
def prior(request):
  """A class-conditional tiny prior, its variables, labels, its jitted logits and sampler."""
  model = PRIORS[request.param]
  labels = jnp.arange(BATCH, dtype=jnp.int32) % 3
  variables = init(model, BATCH, labels=labels)
  logits = jax.jit(lambda tokens, labels: model.apply(variables, tokens, labels=labels,
                                                      train=False))
  return model, variables, labels, logits, sampling.make_sampler(model, batch_size=BATCH)


def rank_of_sampled_tokens(logits, tokens):
  """Rank (0 = most likely) of each sampled token under the logits that drew it."""
  flat = tokens.reshape(tokens.shape[0], -1)
  chosen = jnp.take_along_axis(logits, flat[..., None], axis=-1)
  return np.asarray(jnp.sum(logits > chosen, axis=-1))


def test_filter_logits_keeps_top_k_and_nucleus():
  logits = jnp.log(jnp.array([[0.5, 0.05, 0.3, 0.15]]))
  top_2 = sampling.filter_logits(logits, top_k=2)
  np.testing.assert_array_equal(np.isfinite(top_2), [[True, False, True, False]])
  nucleus = sampling.filter_logits(logits, top_p=0.75)  # 0.5 + 0.3 reaches 0.75
  np.testing.assert_array_equal(np.isfinite(nucleus), [[True, False, True, False]])
  tiny = sampling.filter_logits(logits, top_p=1e-6)
  np.testing.assert_array_equal(np.isfinite(tiny), [[True, False, False, False]])
  with pytest.raises(ValueError, match="0 < top_p <= 1"):
    sampling.check_sampling_args(temperature=1.0, top_k=None, top_p=1.5)


def test_the_transformer_decodes_with_its_cache_and_the_pixelcnn_recomputes():
  assert sampling.has_cache(PRIORS["transformer"])
  assert not sampling.has_cache(PRIORS["pixelcnn"])


def test_cached_and_full_recomputation_give_the_same_samples(prior):
  model, variables, labels, logits, sampler = prior
  if not sampling.has_cache(model):
    pytest.skip("the PixelCNN has no cache: its sampler is the full recomputation")
  cached = sampler(variables, KEY, labels)

  @jax.jit
  def full(variables, rng, labels):
    step = sampling.recompute_step(lambda tokens: logits(tokens.reshape(cached.shape), labels))
    return sampling.decode(step, None, rng, batch_size=BATCH, length=model.length)

  chex.assert_shape(cached, (BATCH, 4, 4))
  assert cached.dtype == jnp.int32
  np.testing.assert_array_equal(cached.reshape(BATCH, -1), full(variables, KEY, labels))


def test_greedy_takes_the_argmax_and_low_temperature_and_tiny_top_p_equal_it(prior):
  model, variables, labels, logits, _ = prior
  greedy = sampling.make_sampler(model, batch_size=BATCH, greedy=True)(variables, KEY, labels)
  assert (rank_of_sampled_tokens(logits(greedy, labels), greedy) == 0).all()
  np.testing.assert_array_equal(greedy.reshape(BATCH, -1),
                                jnp.argmax(logits(greedy, labels), axis=-1))
  for options in (dict(temperature=1e-5), dict(top_p=1e-6)):
    sampler = sampling.make_sampler(model, batch_size=BATCH, **options)
    np.testing.assert_array_equal(sampler(variables, jax.random.PRNGKey(3), labels), greedy,
                                  err_msg=str(options))
  step_logits = logits(greedy, labels)
  np.testing.assert_array_equal(sampling.sample_logits(KEY, step_logits, temperature=0.0),
                                jnp.argmax(step_logits, axis=-1))


def test_top_k_restricts_samples_to_the_top_k(prior):
  model, variables, labels, logits, sampler = prior
  free = sampler(variables, KEY, labels)
  top_2 = sampling.make_sampler(model, batch_size=BATCH, top_k=2)(variables, KEY, labels)
  assert rank_of_sampled_tokens(logits(top_2, labels), top_2).max() <= 1
  assert rank_of_sampled_tokens(logits(free, labels), free).max() > 1  # the test can fail


def test_sampling_is_deterministic_per_key_and_uses_the_label(prior):
  model, variables, labels, _, sampler = prior
  first = sampler(variables, KEY, labels)
  chex.assert_shape(first, (BATCH, *model.grid_shape))
  assert first.dtype == jnp.int32
  assert np.all((np.asarray(first) >= 0) & (np.asarray(first) < model.codebook_size))
  np.testing.assert_array_equal(first, sampler(variables, KEY, labels))
  assert (first != sampler(variables, jax.random.PRNGKey(8), labels)).any()
  assert (first != sampler(variables, KEY, (labels + 1) % 3)).any()
  with pytest.raises(ValueError, match="temperature >= 0"):
    sampling.make_sampler(model, batch_size=BATCH, temperature=-1.0)


def test_pmapped_sampler_folds_the_device_index_into_the_key(prior):
  model, variables, labels, _, sampler = prior
  devices = jax.local_device_count()
  assert devices == 4, "tests/conftest.py sets 4 CPU devices"
  per_device_labels = jnp.broadcast_to(labels, (devices, BATCH))
  pmapped = parallel.prior_sample_step(model, per_device_batch=BATCH)
  samples = pmapped(variables, KEY, per_device_labels)
  chex.assert_shape(samples, (devices, BATCH, 4, 4))
  assert len({np.asarray(device).tobytes() for device in samples}) == devices
  np.testing.assert_array_equal(samples[1], sampler(variables, jax.random.fold_in(KEY, 1),
                                                    labels))
  one_device = parallel.prior_sample_step(model, per_device_batch=BATCH,
                                          devices=jax.local_devices()[:1])
  np.testing.assert_array_equal(one_device(variables, KEY, per_device_labels[:1])[0],
                                sampler(variables, jax.random.fold_in(KEY, 0), labels))


def test_bottom_prior_sampling_uses_the_top_grid():
  model = Prior(condition_codebook_size=5)
  top = jax.random.randint(jax.random.PRNGKey(1), (2, 2, 2), 0, 5, dtype=jnp.int32)
  variables = init(model, 2, condition=top)
  sampler = sampling.make_sampler(model, batch_size=2, greedy=True)
  samples = sampler(variables, KEY, condition=top)
  chex.assert_shape(samples, (2, 4, 4))
  assert (samples != sampler(variables, KEY, condition=(top + 1) % 5)).any()


@pytest.mark.parametrize("batch_size", [0, -2])
def test_a_batch_of_no_grids_is_an_error(batch_size):
  with pytest.raises(ValueError, match=f"batch_size is {batch_size}; a sampler draws "
                                       "batch_size >= 1 grids"):
    sampling.make_sampler(PRIORS["transformer"], batch_size=batch_size)


def test_num_steps_outside_the_grid_is_an_error():
  def never_called(tokens, position, cache):
    raise AssertionError("the check comes first")
  for num_steps in (0, 17):
    with pytest.raises(ValueError, match=f"num_steps is {num_steps}; sample 1 to 16"):
      sampling.decode(never_called, None, KEY, batch_size=2, length=16, num_steps=num_steps)
