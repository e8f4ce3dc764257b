"""The adversarial losses on known logits, LeCam, R1 and the adaptive weight."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vqjax import losses

REAL = jnp.array([[2.0, 0.5], [-1.0, 0.0]])
FAKE = jnp.array([[-2.0, 0.5], [1.5, -0.5]])


def test_hinge_losses_on_known_logits():
  # D: 0.5 * (mean(relu(1 - real)) + mean(relu(1 + fake)))
  real_terms = [0.0, 0.5, 2.0, 1.0]
  fake_terms = [0.0, 1.5, 2.5, 0.5]
  expected = 0.5 * (np.mean(real_terms) + np.mean(fake_terms))
  np.testing.assert_allclose(losses.discriminator_loss(REAL, FAKE, "hinge"), expected, rtol=1e-6)
  np.testing.assert_allclose(losses.generator_loss(FAKE, "hinge"), -np.mean(FAKE), rtol=1e-6)


def test_non_saturating_losses_on_known_logits():
  softplus = lambda x: np.log1p(np.exp(x))
  expected = 0.5 * (np.mean(softplus(-np.asarray(REAL))) + np.mean(softplus(np.asarray(FAKE))))
  np.testing.assert_allclose(losses.discriminator_loss(REAL, FAKE, "non_saturating"), expected,
                             rtol=1e-6)
  np.testing.assert_allclose(losses.generator_loss(FAKE, "non_saturating"),
                             np.mean(softplus(-np.asarray(FAKE))), rtol=1e-6)
  # At D's optimum on a sure real (logit -> +inf) the loss goes to 0; saturates nowhere.
  assert float(losses.generator_loss(jnp.array([30.0]), "non_saturating")) < 1e-12


def test_unknown_loss_names_the_choices():
  with pytest.raises(ValueError, match="'hinge', 'non_saturating'"):
    losses.discriminator_loss(REAL, FAKE, "wasserstein")


def test_bfloat16_logits_give_float32_losses():
  value = losses.discriminator_loss(REAL.astype(jnp.bfloat16), FAKE.astype(jnp.bfloat16))
  assert value.dtype == jnp.float32


def test_lecam_regularization_and_ema():
  ema = losses.LeCamEMA(real=jnp.float32(0.5), fake=jnp.float32(-0.25))
  real, fake = np.asarray(REAL), np.asarray(FAKE)
  expected = (np.mean(np.maximum(real - (-0.25), 0) ** 2)
              + np.mean(np.maximum(0.5 - fake, 0) ** 2))
  np.testing.assert_allclose(losses.lecam_regularization(REAL, FAKE, ema), expected, rtol=1e-6)
  moved = losses.update_lecam_ema(ema, REAL, FAKE, decay=0.9)
  np.testing.assert_allclose(moved.real, 0.9 * 0.5 + 0.1 * real.mean(), rtol=1e-6)
  np.testing.assert_allclose(moved.fake, 0.9 * -0.25 + 0.1 * fake.mean(), rtol=1e-6)


def test_lecam_ema_over_devices_is_the_global_mean():
  real = jnp.arange(8.0).reshape(4, 2)
  fake = -jnp.arange(8.0).reshape(4, 2)
  update = jax.pmap(lambda r, f: losses.update_lecam_ema(losses.init_lecam_ema(), r, f,
                                                         decay=0.5, axis_name="d"),
                    axis_name="d")
  mapped = update(real, fake)
  single = losses.update_lecam_ema(losses.init_lecam_ema(), real, fake, decay=0.5)
  chex.assert_trees_all_close(jax.tree.map(lambda x: x[0], mapped), single)


def test_r1_penalty_of_a_linear_discriminator():
  weights = jnp.array([1.0, -2.0, 3.0])
  logits_fn = lambda x: x.reshape(x.shape[0], -1) @ weights
  images = jnp.ones((5, 1, 3, 1))
  np.testing.assert_allclose(losses.r1_penalty(logits_fn, images), 14.0, rtol=1e-6)


def test_adaptive_weight_is_the_ratio_of_norms_clipped_and_fixed():
  rec = {"kernel": jnp.array([3.0, 4.0])}
  gan = {"kernel": jnp.array([0.0, 0.5])}
  np.testing.assert_allclose(losses.adaptive_weight(rec, gan), 5.0 / (0.5 + 1e-4), rtol=1e-6)
  zero = {"kernel": jnp.zeros(2)}
  np.testing.assert_allclose(losses.adaptive_weight(rec, zero), 1e4)
  np.testing.assert_allclose(losses.adaptive_weight(rec, zero, max_weight=7.0), 7.0)
  grad = jax.grad(lambda r: losses.adaptive_weight({"kernel": r}, gan))(rec["kernel"])
  np.testing.assert_array_equal(grad, 0.0)
