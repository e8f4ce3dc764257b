"""The adversarial step (VQGAN, and a VQ-VAE): the adaptive weight, one pullback through the generator, the
discriminator start, EMA and LeCam state, and the pmapped step against one device."""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vqjax import losses, models
from vqjax.train import gan_state, gan_steps, parallel, steps
from vqjax.runner import build
from vqjax.train.state import QUANTIZER_STATE, step_key

_jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})
SIZE = 16


def _models(axis_name=None, norm="batch", ema_decay=None, dtype="float32", name="vqgan"):
  quantizer = dict(name="vq", codebook_size=16, dim=8, ema_decay=ema_decay)
  if name == "vqgan":
    fields = dict(channels=8, channel_multipliers=(1, 2), num_res_blocks=1,
                  attention_resolutions=(8,), z_channels=8)
  else:  # any tokenizer trains adversarially: a VQ-VAE too
    fields = dict(hidden_channels=8, residual_channels=4, num_residual_layers=1)
  model = build.build_model(dict(name=name, image_channels=3, embedding_dim=8, dtype=dtype,
                                 quantizer=quantizer, **fields), axis_name=axis_name)
  disc = build.build_discriminator(dict(channels=8, num_layers=2, norm=norm, dtype=dtype),
                                   axis_name=axis_name)
  return model, disc


def _images(n=8, seed=0):
  return jnp.asarray(np.random.RandomState(seed).uniform(-1, 1, (n, SIZE, SIZE, 3)), jnp.float32)


@functools.lru_cache(maxsize=None)
def _lpips_variables():  # random LPIPS weights: the step's mechanics, not the metric
  x = jnp.zeros((1, SIZE, SIZE, 3))
  return jax.jit(models.LPIPS().init)(jax.random.key(3), x, x)


def _state(model, disc, g_tx, d_tx, **kwargs):
  create = functools.partial(gan_state.create_gan_train_state, model, disc, g_tx, d_tx, seed=0,
                             **kwargs)
  return _jit(create)(_images(1))


def _step(model, disc, g_tx, d_tx, settings, adversarial=True):
  step = functools.partial(gan_steps.gan_train_step, model=model, discriminator=disc,
                           perceptual=models.LPIPS(), generator_optimizer=g_tx,
                           discriminator_optimizer=d_tx, settings=settings,
                           adversarial=adversarial, axis_name=None)
  return _jit(step)


@pytest.mark.parametrize("name", ["vqgan", "vqvae"])
def test_adaptive_weight_and_generator_gradient_match_separate_gradients(name):
  model, disc = _models(name=name)
  sgd = optax.sgd(1.0)
  state = _state(model, disc, sgd, sgd)
  settings = gan_steps.GANLossSettings(discriminator_weight=0.5, perceptual_weight=0.7)
  images = _images()
  new_state, metrics = _step(model, disc, sgd, sgd, settings)(
      state, {"image": images}, _lpips_variables())
  key = jax.random.split(step_key(state))[0]

  def reconstruct(params):
    output, _ = model.apply({"params": params}, images, train=True, mutable=[QUANTIZER_STATE],
                            rngs={"quantizer": key})
    return output

  def rec_loss(params):
    reconstruction = reconstruct(params).reconstruction
    perceptual = jnp.mean(models.LPIPS().apply(_lpips_variables(), reconstruction, images))
    return jnp.mean(jnp.abs(reconstruction - images)) + 0.7 * perceptual

  def gan_loss(params):
    logits, _ = gan_steps.discriminate(disc, state.disc_params, state.disc_state,
                                       reconstruct(params).reconstruction, train=True)
    return losses.generator_loss(logits)

  def last(grads):  # the decoder's last layer: VQGAN's output_layer, VQ-VAE's decoder/up1
    for key in model.output_layer_path:
      grads = grads[key]
    return grads["kernel"]

  @_jit
  def separately(params, weight):
    rec_grads, gan_grads = jax.grad(rec_loss)(params), jax.grad(gan_loss)(params)
    ratio = jnp.linalg.norm(last(rec_grads)) / (jnp.linalg.norm(last(gan_grads)) + 1e-4)
    total = jax.grad(lambda p: rec_loss(p) + reconstruct(p).quantizer_loss
                     + weight * gan_loss(p))(params)
    return ratio, total

  expected, total = separately(state.params, metrics["gan_weight"])
  np.testing.assert_allclose(metrics["adaptive_weight"], expected, rtol=1e-4)
  np.testing.assert_allclose(metrics["gan_weight"], 0.5 * expected, rtol=1e-4)
  # One pullback gives the gradient of rec + quantizer loss + gan_weight * gan.
  applied = jax.tree.map(lambda old, new: old - new, state.params, new_state.params)
  chex.assert_trees_all_close(applied, total, rtol=2e-3, atol=1e-4)


def test_discriminator_start_switches_programs_on_the_host():
  model, disc = _models(axis_name=parallel.AXIS_NAME)
  adam = optax.adam(1e-3, b1=0.5, b2=0.9)
  devices = jax.local_devices()[:1]
  init = parallel.init_gan_state(model, disc, adam, adam, seed=0, image_shape=(SIZE, SIZE, 3),
                                 devices=devices)
  settings = gan_steps.GANLossSettings(discriminator_start=1, perceptual_weight=0.0)
  build = lambda settings: parallel.gan_train_step(
      model, disc, generator_optimizer=adam, discriminator_optimizer=adam, settings=settings,
      devices=devices)
  step = build(settings)
  batch = {"image": _images()[None]}
  state = jax.device_get(init())
  first, before = step(init(), batch)  # the state is donated: compare with host copies
  first_host = jax.device_get(first)
  assert float(before["gan_weight"]) == 0.0 and float(before["discriminator_loss"]) == 0.0
  chex.assert_trees_all_equal(first_host.disc_params, state.disc_params)
  chex.assert_trees_all_equal(first_host.disc_opt_state, state.disc_opt_state)
  chex.assert_trees_all_equal(first_host.disc_state, state.disc_state)
  second, after = step(first, batch)  # the step counted on the host: now adversarial
  assert sorted(after) == sorted(before)  # the logs keep their keys across the switch
  assert float(after["gan_weight"]) > 0.0 and float(after["discriminator_loss"]) > 0.0
  second = jax.device_get(second)
  assert not np.allclose(second.disc_params["conv0"]["kernel"],
                         first_host.disc_params["conv0"]["kernel"])
  assert not np.allclose(second.disc_state["batch_stats"]["norm1"]["mean"],
                         first_host.disc_state["batch_stats"]["norm1"]["mean"])
  # A state it did not return (a restart) has its step read: step 1 is adversarial...
  _, restarted = build(settings)(jax.device_put(first_host), batch)
  chex.assert_trees_all_close(restarted, after, rtol=1e-6)
  # ... and a fresh state, even given to the same function, is not.
  _, again = step(init(), batch)
  assert float(again["gan_weight"]) == 0.0
  # Before the start, the generator's update is that of the reconstruction losses alone.
  plain = build(settings._replace(discriminator_weight=0.0, discriminator_start=0))
  without_gan, _ = plain(init(), batch)
  chex.assert_trees_all_close(first_host.params, jax.device_get(without_gan.params),
                              rtol=1e-5, atol=1e-7)


def test_generator_ema_and_lecam_state_in_bfloat16():
  model, disc = _models(norm="none", dtype="bfloat16")
  adam = optax.adam(1e-3, b1=0.5, b2=0.9)
  state = _state(model, disc, adam, adam, generator_ema=True, lecam=True)
  chex.assert_trees_all_equal(state.ema_params, state.params)
  settings = gan_steps.GANLossSettings(perceptual_weight=0.0, generator_ema_decay=0.9,
                                       lecam_weight=0.1, lecam_decay=0.5, r1_gamma=1.0)
  new, metrics = _step(model, disc, adam, adam, settings)(state, {"image": _images()}, None)
  expected_ema = jax.tree.map(lambda e, p: 0.9 * e + 0.1 * p, state.ema_params, new.params)
  chex.assert_trees_all_close(new.ema_params, expected_ema, rtol=1e-6)
  np.testing.assert_allclose(new.lecam_ema["real"], 0.5 * float(metrics["logits_real"]),
                             rtol=1e-5)
  np.testing.assert_allclose(new.lecam_ema["fake"], 0.5 * float(metrics["logits_fake"]),
                             rtol=1e-5)
  assert float(metrics["r1_penalty"]) > 0 and "lecam_loss" in metrics
  assert all(np.isfinite(float(value)) for value in metrics.values())
  assert jax.tree.leaves(new.params)[0].dtype == jnp.float32  # bfloat16 compute only
  assert new.variables["params"] is new.ema_params  # evaluation reads the EMA


def test_settings_are_checked():
  _, batch_norm_disc = _models()
  with pytest.raises(ValueError, match="'group' or 'none'"):
    gan_steps.check_settings(gan_steps.GANLossSettings(r1_gamma=1.0),
                             discriminator=batch_norm_disc)
  with pytest.raises(ValueError, match="'l1', 'l2'"):
    gan_steps.check_settings(gan_steps.GANLossSettings(reconstruction_loss="huber"))
  with pytest.raises(ValueError, match="discriminator_start"):
    gan_steps.check_settings(gan_steps.GANLossSettings(discriminator_start=-1))
  with pytest.raises(ValueError, match="generator_ema_decay"):
    gan_steps.check_settings(gan_steps.GANLossSettings(generator_ema_decay=1.0))


def test_pmapped_gan_step_on_4_devices_equals_1_device():
  assert jax.local_device_count() >= 4
  model, disc = _models(axis_name=parallel.AXIS_NAME, ema_decay=0.9)
  # SGD: updates proportional to the gradients (Adam would blow up the rounding noise of
  # gradients that are zero in exact arithmetic, such as the attention keys' bias).
  sgd = optax.sgd(0.1)
  settings = gan_steps.GANLossSettings(perceptual_weight=0.5, discriminator_weight=0.8)
  images = _images(8, seed=1)
  results = []
  for devices in (jax.local_devices()[:4], jax.local_devices()[:1]):
    init = parallel.init_gan_state(model, disc, sgd, sgd, seed=0,
                                   image_shape=(SIZE, SIZE, 3), devices=devices)
    step = parallel.gan_train_step(model, disc, generator_optimizer=sgd,
                                   discriminator_optimizer=sgd, settings=settings,
                                   perceptual=models.LPIPS(),
                                   perceptual_variables=_lpips_variables(), devices=devices)
    state = init()
    batch = {"image": images.reshape(len(devices), -1, SIZE, SIZE, 3)}
    # Over 4 devices the step averages gradients, metrics and batch statistics with
    # all-reduces; over one it has none (vqjax.collectives).
    program = step.mapped.lower(state, batch, step.constant).compile().as_text()
    assert ("all-reduce" in program) == (len(devices) > 1)
    # One step: the next one's code assignments can flip on near-ties of the EMA codebook
    # under the two programs' different rounding, which is not what this test is about.
    state, metrics = step(state, batch)
    results.append(jax.device_get((state, metrics)))
  (state4, metrics4), (state1, metrics1) = results
  chex.assert_trees_all_close(metrics4, metrics1, rtol=2e-4, atol=1e-5)
  chex.assert_trees_all_close(state4, state1, rtol=2e-4, atol=1e-5)


def test_kmeans_initialization_restarts_the_generator_ema_from_the_fit():
  model, disc = _models(norm="none")
  adam = optax.adam(1e-3)
  state = _state(model, disc, adam, adam, generator_ema=True)
  fit = _jit(functools.partial(steps.kmeans_step, model=model, iterations=2))
  fitted = fit(state, {"image": _images()}, jax.random.key(0))
  codebook = lambda params: params["quantizer"]["codebook"]
  assert not np.allclose(codebook(fitted.params), codebook(state.params))
  chex.assert_trees_all_equal(fitted.ema_params, fitted.params)
