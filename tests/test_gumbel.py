"""Tests for vqjax/quantizers/gumbel.py: hard samples are exactly one-hot with gradients to
the logits, no key means argmax, and the KL to the uniform prior is right."""
from __future__ import annotations

import functools
import math

from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np

from vqjax.quantizers import gumbel

CODES, DIM = 6, 3
# temperature is traced, so changing it does not recompile.
quantize = jax.jit(gumbel.quantize, static_argnames=("hard",))


def normal(seed, shape):
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


CODEBOOK = normal(0, (CODES, DIM))


class GumbelTest(chex.TestCase):

  def test_hard_samples_are_one_hot_with_gradients_to_the_logits(self):
    logits = normal(1, (5, CODES))
    key = jax.random.PRNGKey(0)
    (one_hot, indices), out = jax.jit(lambda x: (
        gumbel.sample_one_hot(x, key=key, temperature=0.7),
        gumbel.quantize(x, CODEBOOK, key=key, temperature=0.7)))(logits)
    np.testing.assert_array_equal(one_hot, jax.nn.one_hot(indices, CODES))
    np.testing.assert_array_equal(out.indices, indices)
    np.testing.assert_array_equal(out.quantized, gumbel.indices_to_codes(indices, CODEBOOK))
    self.assertGreater(len(np.unique(indices)), 1)

    # The gradient is that of the relaxed sample softmax((logits + g) / temperature).
    weights = normal(2, (5, DIM))
    noise = jax.random.gumbel(key, logits.shape)

    def hard_loss(x):
      return jnp.sum(gumbel.quantize(x, CODEBOOK, key=key, temperature=0.7).quantized * weights)

    def relaxed_loss(x):
      return jnp.sum(jax.nn.softmax((x + noise) / 0.7) @ CODEBOOK * weights)

    grad, relaxed_grad = jax.jit(lambda x: (jax.grad(hard_loss)(x), jax.grad(relaxed_loss)(x)))(
        logits)
    chex.assert_trees_all_close(grad, relaxed_grad, rtol=1e-5, atol=1e-6)
    self.assertGreater(float(jnp.min(jnp.sum(jnp.abs(grad), axis=-1))), 0.0)

  def test_samples_follow_softmax_of_the_logits(self):
    logits = jnp.log(jnp.asarray([0.5, 0.3, 0.2, 0.0, 0.0, 0.0]) + 1e-9)
    draws = jnp.broadcast_to(logits, (4000, CODES))
    out = quantize(draws, CODEBOOK, key=jax.random.PRNGKey(1), temperature=1.0)
    frequencies = np.bincount(np.asarray(out.indices), minlength=CODES) / 4000
    np.testing.assert_allclose(frequencies, [0.5, 0.3, 0.2, 0, 0, 0], atol=0.04)

  @chex.variants(with_jit=True, without_jit=True)
  def test_no_key_is_the_argmax(self):
    logits = normal(3, (4, 3, CODES))
    deterministic = self.variant(gumbel.quantize)
    out = deterministic(logits, CODEBOOK, key=None, temperature=0.5)
    np.testing.assert_array_equal(out.indices, jnp.argmax(logits, axis=-1))
    np.testing.assert_array_equal(out.quantized, CODEBOOK[jnp.argmax(logits, axis=-1)])
    # Deterministic: the same output every call, whatever the temperature.
    chex.assert_trees_all_close(deterministic(logits, CODEBOOK, key=None, temperature=2.0), out)

  def test_soft_samples_mix_the_codes(self):
    logits = normal(4, (5, CODES))
    out = quantize(logits, CODEBOOK, key=None, temperature=2.0, hard=False)
    chex.assert_trees_all_close(out.quantized, jax.nn.softmax(logits / 2.0) @ CODEBOOK,
                                rtol=1e-5)
    np.testing.assert_array_equal(out.indices, jnp.argmax(logits, axis=-1))

  def test_kl_to_the_uniform_prior(self):
    chex.assert_trees_all_close(gumbel.kl_to_uniform(jnp.full((3, CODES), 1.7)), 0.0, atol=1e-6)
    # A one-hot posterior has KL = log K; a posterior (1/2, 1/2, 0, ...) has log(K / 2).
    peaked = jnp.asarray([[50.0] + [0.0] * (CODES - 1), [50.0, 50.0] + [0.0] * (CODES - 2)])
    out = quantize(peaked, CODEBOOK, key=None)
    chex.assert_trees_all_close(out.kl_loss, (math.log(CODES) + math.log(CODES / 2)) / 2,
                                rtol=1e-5)
    self.assertAlmostEqual(float(quantize(jnp.zeros((2, CODES)), CODEBOOK).kl_loss), 0.0,
                           delta=1e-6)

  @parameterized.parameters(jnp.float32, jnp.bfloat16)
  def test_dtypes(self, dtype):
    logits = normal(5, (2, 3, CODES)).astype(dtype)
    out = quantize(logits, CODEBOOK)
    chex.assert_shape([out.quantized, out.indices], [(2, 3, DIM), (2, 3)])
    chex.assert_type([out.quantized, out.indices, out.kl_loss], [dtype, jnp.int32, jnp.float32])
    chex.assert_trees_all_close(out.quantized, CODEBOOK[out.indices].astype(dtype))
    chex.assert_trees_all_close(out.kl_loss, gumbel.kl_to_uniform(logits.astype(jnp.float32)),
                                rtol=1e-6)
    grad = jax.jit(jax.grad(lambda x: jnp.sum(gumbel.quantize(x, CODEBOOK).quantized.astype(
        jnp.float32))))(logits)
    chex.assert_type(grad, dtype)
    self.assertTrue(bool(jnp.any(grad != 0)))

  def test_vmap_pmap_and_codebook_gradient(self):
    logits = normal(6, (4, 5, CODES))
    vmapped = jax.jit(jax.vmap(lambda x: gumbel.quantize(x, CODEBOOK)))(logits)
    chex.assert_trees_all_close(vmapped.quantized, quantize(logits, CODEBOOK).quantized)
    # One key per device, as a pmapped train step would fold in the device index.
    keys = jax.random.split(jax.random.PRNGKey(3), 4)
    pmapped = jax.pmap(lambda x, k: gumbel.quantize(x, CODEBOOK, key=k, temperature=0.7))(
        logits, keys)
    looped = quantize(logits[1], CODEBOOK, key=keys[1], temperature=0.7)
    chex.assert_trees_all_close(jax.tree.map(lambda x: x[1], pmapped), looped)
    # The codebook gets the gradient of the rows that were picked.
    codebook_grad = jax.jit(jax.grad(lambda c: jnp.sum(gumbel.quantize(logits, c).quantized)))(
        CODEBOOK)
    counts = np.bincount(np.asarray(jnp.argmax(logits, -1)).reshape(-1), minlength=CODES)
    chex.assert_trees_all_close(codebook_grad, np.repeat(counts[:, None], DIM, 1) * 1.0)

  def test_metrics_over_devices(self):
    indices = jnp.asarray([[0, 1], [2, 3], [4, 5], [0, 0]], jnp.int32)
    sharded = jax.pmap(functools.partial(gumbel.codebook_metrics, codebook_size=CODES,
                                         axis_name="d"), axis_name="d")(indices)
    chex.assert_trees_all_close(jax.tree.map(lambda x: x[0], sharded),
                                gumbel.codebook_metrics(indices, CODES))
    self.assertEqual(int(sharded["dead_codes"][0]), 0)

  def test_invalid_arguments_are_rejected(self):
    with self.assertRaisesRegex(ValueError, "logits have 5 entries .* codebook has 6 codes"):
      gumbel.quantize(jnp.zeros((2, 5)), CODEBOOK)
    with self.assertRaisesRegex(ValueError, "temperature is 0"):
      gumbel.quantize(jnp.zeros((2, CODES)), CODEBOOK, temperature=0.0)
    with self.assertRaisesRegex(ValueError, "floating inputs"):
      gumbel.quantize(jnp.zeros((2, CODES), jnp.int32), CODEBOOK)
    with self.assertRaisesRegex(ValueError, "codebook must have rank 2"):
      gumbel.quantize(jnp.zeros((2, CODES)), jnp.zeros((CODES,)))
