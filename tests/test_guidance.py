"""Classifier-free guidance for every class-conditional prior (causal transformer with its
key-value cache, PixelCNN, MaskGIT): training drops labels to the null class; guided
sampling at s = 1 is exactly conditional sampling and at s = 0 exactly null-label
sampling; the null class is never a label to sample; the pmapped guided sampler equals the
per-device one; priors without a null class (old checkpoints) keep their parameters."""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vqjax import guidance, sampling
from vqjax.models import TinyGatedPixelCNN, TinyMaskGITPrior, TinyTransformerPrior
from vqjax.train import parallel

BATCH, CLASSES = 4, 3
KEY = jax.random.PRNGKey(7)
LABELS = jnp.arange(BATCH, dtype=jnp.int32) % CLASSES
GUIDED = dict(num_classes=CLASSES, label_dropout_rate=0.1)
PRIORS = {"transformer": TinyTransformerPrior(num_layers=1, **GUIDED),
          "pixelcnn": TinyGatedPixelCNN(**GUIDED),
          "maskgit": TinyMaskGITPrior(num_layers=1, **GUIDED)}
SAMPLING = {"transformer": {}, "pixelcnn": {}, "maskgit": dict(maskgit_steps=4)}


def _init(model, labels=LABELS, scale=3.0):
  tokens = jnp.zeros((labels.shape[0], *model.grid_shape), jnp.int32)
  variables = model.init(jax.random.PRNGKey(0), tokens, labels=labels, train=False)
  return jax.tree.map(lambda x: scale * x, variables)  # samples far from uniform


@pytest.fixture(scope="module", params=list(PRIORS))
def prior(request):
  model = PRIORS[request.param]
  return model, jax.jit(_init, static_argnums=0)(model), SAMPLING[request.param]


def test_guided_logits_are_uncond_plus_s_times_the_difference():
  cond, uncond = jnp.array([[1.0, 2.0]]), jnp.array([[0.5, -1.0]])
  both = jnp.concatenate([cond, uncond])
  for scale in (0.0, 1.0, 3.0):
    np.testing.assert_allclose(guidance.guided_logits(both, scale),
                               uncond + scale * (cond - uncond), rtol=1e-6)
  np.testing.assert_array_equal(guidance.guided_logits(both, 1.0), cond)
  np.testing.assert_array_equal(guidance.guided_logits(both, 0.0), uncond)
  assert guidance.guidance_scale_at(4.0, 0.5, ramp=False) == 4.0
  assert guidance.guidance_scale_at(4.0, 0.5, ramp=True) == 2.5  # LlamaGen's linear ramp
  assert guidance.guidance_scale_at(4.0, 1.0, ramp=True) == 4.0


def test_scale_one_is_conditional_sampling_exactly(prior):
  model, variables, options = prior
  plain = sampling.make_sampler(model, batch_size=BATCH, **options)(variables, KEY, LABELS)
  for ramp in (False, True):
    guided = sampling.make_sampler(model, batch_size=BATCH, guidance_scale=1.0,
                                   guidance_ramp=ramp, **options)
    np.testing.assert_array_equal(guided(variables, KEY, LABELS), plain)


def test_scale_zero_is_null_label_sampling_and_larger_scales_change_samples(prior):
  model, variables, options = prior
  null = jnp.full((BATCH,), CLASSES, jnp.int32)
  unconditional = jax.jit(functools.partial(sampling.sample_prior, model, batch_size=BATCH,
                                            **options))(variables, KEY, null)
  guided = sampling.make_sampler(model, batch_size=BATCH, guidance_scale=0.0, **options)
  np.testing.assert_array_equal(guided(variables, KEY, LABELS), unconditional)
  strong = sampling.make_sampler(model, batch_size=BATCH, guidance_scale=30.0, **options)
  plain = sampling.make_sampler(model, batch_size=BATCH, **options)
  assert (strong(variables, KEY, LABELS) != plain(variables, KEY, LABELS)).any()


def test_the_null_class_is_never_a_label_to_sample(prior):
  model, variables, options = prior
  sampler = sampling.make_sampler(model, batch_size=BATCH, guidance_scale=2.0, **options)
  for bad in (CLASSES, -1):
    with pytest.raises(ValueError, match=rf"outside \[0, {CLASSES}\).*null class {CLASSES}"):
      sampler(variables, KEY, jnp.full((BATCH,), bad, jnp.int32))


def test_guidance_needs_a_null_class():
  plain = TinyTransformerPrior(num_classes=CLASSES)  # as every prior before guidance
  with pytest.raises(ValueError, match="has no null class.*label_dropout_rate=0.1"):
    sampling.make_sampler(plain, batch_size=BATCH, guidance_scale=2.0)
  with pytest.raises(ValueError, match="guidance_scale is -1"):
    sampling.make_sampler(PRIORS["transformer"], batch_size=BATCH, guidance_scale=-1.0)


def test_the_guided_transformer_keeps_one_cache_per_half():
  model = PRIORS["transformer"]
  variables = _init(model)
  _, cache = sampling.prior_decode_step(model, variables, batch_size=BATCH, labels=LABELS,
                                        guidance_scale=2.0)
  assert all(layer.key.shape[0] == 2 * BATCH for layer in cache)


def test_guidance_under_the_pmapped_sampler_equals_per_device():
  model, devices = PRIORS["transformer"], jax.local_device_count()
  variables = _init(model)
  sampler = sampling.make_sampler(model, batch_size=BATCH, guidance_scale=3.0,
                                  guidance_ramp=True)
  pmapped = parallel.prior_sample_step(model, per_device_batch=BATCH, guidance_scale=3.0,
                                       guidance_ramp=True)
  samples = pmapped(variables, KEY, jnp.broadcast_to(LABELS, (devices, BATCH)))
  chex.assert_shape(samples, (devices, BATCH, 4, 4))
  for device in range(devices):
    np.testing.assert_array_equal(samples[device],
                                  sampler(variables, jax.random.fold_in(KEY, device), LABELS))
  with pytest.raises(ValueError, match="outside"):
    pmapped(variables, KEY, jnp.full((devices, BATCH), CLASSES, jnp.int32))


@pytest.mark.parametrize("name", list(PRIORS))
def test_training_drops_labels_to_the_null_class(name):
  model = PRIORS[name].clone(label_dropout_rate=0.999)
  variables = _init(model)
  tokens = jnp.asarray(np.random.default_rng(0).integers(0, 16, (BATCH, 4, 4)), jnp.int32)
  dropped = model.apply(variables, tokens, labels=LABELS, train=True,
                        rngs={"dropout": jax.random.PRNGKey(1)})
  null = model.apply(variables, tokens, labels=jnp.full((BATCH,), CLASSES), train=False)
  np.testing.assert_allclose(dropped, null, rtol=1e-5, atol=1e-5)
  kept = model.apply(variables, tokens, labels=LABELS, train=False)
  assert np.abs(kept - null).max() > 1e-3


@pytest.mark.parametrize("name", list(PRIORS))
def test_without_label_dropout_the_parameters_are_those_of_before(name):
  """A config without label_dropout_rate (an old checkpoint) builds the same parameters;
  the null class is one more row; unconditional priors get none."""
  shapes = {}
  for rate in (0.0, 0.1):
    model = PRIORS[name].clone(label_dropout_rate=rate)
    shapes[rate] = jax.eval_shape(functools.partial(_init, model))
  rows = lambda tree: {leaf.shape[0] for path, leaf in jax.tree_util.tree_flatten_with_path(
      tree)[0] if "class" in jax.tree_util.keystr(path)}
  assert rows(shapes[0.0]) == {CLASSES} and rows(shapes[0.1]) == {CLASSES + 1}
  unconditional = PRIORS[name].clone(num_classes=0)
  tokens = jnp.zeros((1, 4, 4), jnp.int32)
  params = jax.eval_shape(lambda: unconditional.init(KEY, tokens, train=False))
  assert not rows(params)


def test_a_guided_bottom_prior_gives_both_halves_the_top_grid():
  model = TinyTransformerPrior(num_layers=1, condition_codebook_size=5, **GUIDED)
  top = jax.random.randint(KEY, (BATCH, 2, 2), 0, 5, dtype=jnp.int32)
  tokens = jnp.zeros((BATCH, 4, 4), jnp.int32)
  variables = model.init(KEY, tokens, labels=LABELS, condition=top, train=False)
  plain = sampling.make_sampler(model, batch_size=BATCH)(variables, KEY, LABELS, top)
  guided = sampling.make_sampler(model, batch_size=BATCH, guidance_scale=1.0)
  np.testing.assert_array_equal(guided(variables, KEY, LABELS, top), plain)
