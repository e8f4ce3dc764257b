"""Tests for vqjax/quantizers/lfq.py: entropies with answers computed by hand, the exact
entropy against a brute-force softmax over the explicit codebook, and pmapped losses equal
to the one-device losses on the concatenated batch."""
from __future__ import annotations

import functools
import math

from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np

from vqjax.quantizers import lfq

DIM = 4
# Compiled once per shape and static setting (eager calls compile every op separately);
# scale, inverse_temperature and diversity_weight are traced, so changing them is free.
quantize = jax.jit(lfq.quantize, static_argnames=("entropy", "block_size", "axis_name"))


def normal(seed, shape, scale=1.0):
  return jnp.asarray(scale * np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def binary_entropy(p):
  return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def brute_force_entropies(z, inverse_temperature, scale=1.0):
  """(per-sample, batch) entropy from softmax(-t |z - c|^2) over the explicit codebook."""
  flat = np.asarray(z, np.float64).reshape(-1, z.shape[-1])
  codes = np.asarray(lfq.codebook(z.shape[-1], scale=scale), np.float64)
  logits = -inverse_temperature * np.sum((flat[:, None, :] - codes[None]) ** 2, axis=-1)
  probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
  probs /= probs.sum(axis=-1, keepdims=True)

  def entropy(p):
    return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=-1)

  return entropy(probs).mean(), entropy(probs.mean(axis=0))


class LFQTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_one_hot_samples_with_a_uniform_batch(self):
    # Every code once, far from the others: each sample's distribution is one-hot, the
    # batch is uniform over 2^DIM codes, so H_sample = 0 and H_batch = DIM log 2.
    z = lfq.codebook(DIM)
    out = self.variant(functools.partial(lfq.quantize, inverse_temperature=100.0))(z)
    chex.assert_trees_all_close(out.per_sample_entropy, 0.0, atol=1e-6)
    chex.assert_trees_all_close(out.batch_entropy, DIM * math.log(2), rtol=1e-6)
    chex.assert_trees_all_close(out.entropy_loss, -DIM * math.log(2), rtol=1e-6)
    chex.assert_trees_all_close(out.commitment_loss, 0.0, atol=0.0)
    np.testing.assert_array_equal(out.indices, np.arange(2**DIM))

  @parameterized.parameters("exact", "factorized")
  def test_known_entropies(self, entropy):
    log2 = math.log(2)
    # One-hot samples, uniform batch (as above).
    out = quantize(lfq.codebook(DIM), inverse_temperature=100.0, entropy=entropy)
    chex.assert_trees_all_close((out.per_sample_entropy, out.batch_entropy), (0.0, DIM * log2),
                                atol=1e-5)
    # z = 0: every sample is uniform over the codes: H_sample = H_batch = DIM log 2.
    out = quantize(jnp.zeros((2**DIM, DIM)), diversity_weight=0.5, entropy=entropy)
    chex.assert_trees_all_close(
        (out.per_sample_entropy, out.batch_entropy, out.entropy_loss),
        (DIM * log2, DIM * log2, 0.5 * DIM * log2), rtol=1e-5)

  def test_correlated_bits_by_hand(self):
    # z and -z with q(bit = +1 | z) = sigmoid(4 t z) = 3/4 on both bits: each sample has
    # H = 2 H(3/4); the batch puts (9 + 1) / 32 on ++ and --, (3 + 3) / 32 on +- and -+.
    # The per-bit marginals are 1/2, so the factorized batch entropy is 2 log 2 instead.
    a = math.log(3.0) / 4.0
    z = jnp.asarray([[a, a], [-a, -a]])
    exact = quantize(z, inverse_temperature=1.0)
    factorized = quantize(z, inverse_temperature=1.0, entropy="factorized")
    batch = -2 * (10 / 32 * math.log(10 / 32) + 6 / 32 * math.log(6 / 32))
    for out in (exact, factorized):
      chex.assert_trees_all_close(out.per_sample_entropy, 2 * binary_entropy(0.75), rtol=1e-6)
    chex.assert_trees_all_close(exact.batch_entropy, batch, rtol=1e-6)
    chex.assert_trees_all_close(factorized.batch_entropy, 2 * math.log(2), rtol=1e-6)
    chex.assert_trees_all_close(exact.entropy_loss, 2 * binary_entropy(0.75) - batch, rtol=1e-5)

  @parameterized.parameters((1.0, 1.0, 256), (0.5, 1.0, 3), (2.0, 3.0, 3))
  def test_exact_entropy_matches_the_explicit_codebook(self, inverse_temperature, scale,
                                                       block_size):
    # block_size 3 over 10 inputs: several blocks and a padded last block.
    z = normal(0, (2, 5, DIM), 0.7)
    out = quantize(z, scale=scale, inverse_temperature=inverse_temperature,
                   block_size=block_size)
    per_sample, batch = brute_force_entropies(z, inverse_temperature, scale)
    chex.assert_trees_all_close(out.per_sample_entropy, per_sample, rtol=1e-5)
    chex.assert_trees_all_close(out.batch_entropy, batch, rtol=1e-5)
    factorized = quantize(z, scale=scale, inverse_temperature=inverse_temperature,
                          entropy="factorized")
    self.assertGreaterEqual(float(factorized.batch_entropy), float(out.batch_entropy) - 1e-5)

  def test_indices_codes_round_trip(self):
    indices = jnp.arange(2**DIM, dtype=jnp.int32)
    codes = lfq.indices_to_codes(indices, DIM, scale=2.0)
    chex.assert_shape(codes, (2**DIM, DIM))
    np.testing.assert_array_equal(lfq.codes_to_indices(codes), indices)
    self.assertEqual(np.unique(np.asarray(codes), axis=0).shape[0], 2**DIM)
    np.testing.assert_array_equal(np.unique(codes), [-2.0, 2.0])
    # Index bit i is channel i: index 5 = 0b0101.
    np.testing.assert_array_equal(lfq.indices_to_codes(jnp.int32(5), DIM), [1, -1, 1, -1])
    self.assertEqual(lfq.codebook_size(DIM), 16)

  def test_quantized_is_the_sign_with_a_straight_through_gradient(self):
    z = normal(1, (3, 2, DIM))
    out = quantize(z, scale=0.5)
    np.testing.assert_array_equal(out.quantized, np.where(z > 0, 0.5, -0.5))
    np.testing.assert_array_equal(out.indices, lfq.codes_to_indices(z))
    chex.assert_trees_all_close(out.commitment_loss, jnp.mean((jnp.abs(z) - 0.5) ** 2))
    weights = normal(2, z.shape)
    grad = jax.jit(jax.grad(lambda x: jnp.sum(lfq.quantize(x).quantized * weights)))(z)
    chex.assert_trees_all_close(grad, weights)

  @parameterized.parameters(jnp.float32, jnp.bfloat16)
  def test_dtypes(self, dtype):
    z = normal(3, (2, 3, DIM)).astype(dtype)
    out = quantize(z)
    chex.assert_shape([out.quantized, out.indices], [z.shape, z.shape[:-1]])
    chex.assert_type([out.quantized, out.indices, out.entropy_loss, out.commitment_loss],
                     [dtype, jnp.int32, jnp.float32, jnp.float32])
    reference = quantize(z.astype(jnp.float32))
    np.testing.assert_array_equal(out.indices, reference.indices)
    chex.assert_trees_all_close(out.entropy_loss, reference.entropy_loss, rtol=1e-5)
    grad = jax.jit(jax.grad(lambda x: lfq.quantize(x, inverse_temperature=1.0).entropy_loss))(z)
    chex.assert_type(grad, dtype)
    self.assertTrue(bool(jnp.all(jnp.isfinite(grad.astype(jnp.float32)))))
    self.assertTrue(bool(jnp.any(grad != 0)))

  @parameterized.parameters("exact", "factorized")
  def test_pmap_equals_one_device_on_the_concatenated_batch(self, entropy):
    devices = jax.local_device_count()
    self.assertEqual(devices, 4)
    z = normal(4, (devices, 6, DIM))
    settings = functools.partial(lfq.quantize, inverse_temperature=2.0, entropy=entropy,
                                 block_size=4)

    # Per-device losses, and gradients pmeaned as a train step does, for a shared weight.
    def loss(w, x, axis_name=None):
      out = settings(x * w, axis_name=axis_name)
      return out.entropy_loss + out.commitment_loss, out

    def sharded_step(w, x):
      grad, out = jax.grad(loss, has_aux=True)(w, x, "d")
      return jax.lax.pmean(grad, "d"), out

    weight = jnp.asarray(1.3)
    grads, sharded = jax.pmap(sharded_step, axis_name="d", in_axes=(None, 0))(weight, z)
    grad, single = jax.jit(jax.grad(loss, has_aux=True))(weight, z.reshape(-1, DIM))
    for name in ("entropy_loss", "commitment_loss", "per_sample_entropy", "batch_entropy"):
      chex.assert_trees_all_close(getattr(sharded, name), jnp.full(devices, getattr(single, name)),
                                  rtol=1e-5, custom_message=name)
    np.testing.assert_array_equal(sharded.indices.reshape(-1), single.indices)
    chex.assert_trees_all_close(grads, jnp.full(devices, grad), rtol=1e-4)

  def test_vmap_and_traced_temperature(self):
    z = normal(5, (3, 4, DIM))
    vmapped = jax.jit(jax.vmap(lfq.quantize))(z)
    looped = [quantize(z[i]) for i in range(3)]
    chex.assert_trees_all_close(vmapped, jax.tree.map(lambda *x: jnp.stack(x), *looped))
    # An annealed inverse temperature is a traced value under jit.
    sharper = quantize(z[0], inverse_temperature=jnp.float32(3.0))
    per_sample, batch = brute_force_entropies(z[0], 3.0)
    chex.assert_trees_all_close((sharper.per_sample_entropy, sharper.batch_entropy),
                                (per_sample, batch), rtol=1e-5)

  def test_metrics_count_the_global_batch(self):
    indices = jnp.arange(2**DIM, dtype=jnp.int32).reshape(4, -1)
    sharded = jax.pmap(functools.partial(lfq.codebook_metrics, dim=DIM, axis_name="d"),
                       axis_name="d")
    chex.assert_trees_all_close(sharded(indices)["perplexity"], jnp.full(4, 2.0**DIM),
                                rtol=1e-5)
    self.assertEqual(int(lfq.codebook_metrics(indices[0], DIM)["dead_codes"]), 2**DIM - 4)

  def test_invalid_arguments_are_rejected(self):
    with self.assertRaisesRegex(ValueError, "use entropy='factorized'"):
      lfq.quantize(jnp.zeros((2, 17)))
    chex.assert_shape(quantize(jnp.zeros((2, 17)), entropy="factorized").indices, (2,))
    with self.assertRaisesRegex(ValueError, "between 1 and 31"):
      lfq.indices_to_codes(jnp.zeros((2,), jnp.int32), 32)
    with self.assertRaisesRegex(ValueError, "floating inputs"):
      lfq.quantize(jnp.zeros((2, DIM), jnp.int32))
    with self.assertRaisesRegex(ValueError, "unknown entropy 'full'"):
      lfq.quantize(jnp.zeros((2, DIM)), entropy="full")
    with self.assertRaisesRegex(ValueError, "inverse_temperature is 0"):
      lfq.quantize(jnp.zeros((2, DIM)), inverse_temperature=0)
