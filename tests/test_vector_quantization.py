"""Tests for vqjax.quantizers.vector_quantization."""
import chex
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

from vqjax.quantizers import metrics, search
from vqjax.quantizers import vector_quantization as vq


def _inputs(shape=(2, 3, 4, 8), codebook_size=16, seed=0):
  z_key, codebook_key = jax.random.split(jax.random.key(seed))
  return (jax.random.normal(z_key, shape),
          jax.random.normal(codebook_key, (codebook_size, shape[-1])))


class QuantizeTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.product(dtype=[jnp.float32, jnp.bfloat16],
                         estimator=["straight_through", "rotation"], metric=["l2", "cosine"])
  def test_forward_values_and_shapes(self, dtype, estimator, metric):
    z, codebook = _inputs()
    z = z.astype(dtype)
    out = self.variant(lambda z, c: vq.quantize(z, c, estimator=estimator, metric=metric))(
        z, codebook)
    chex.assert_shape(out.quantized, z.shape)
    chex.assert_shape(out.indices, z.shape[:-1])
    assert out.quantized.dtype == dtype and out.indices.dtype == jnp.int32
    assert out.codebook_loss.dtype == jnp.float32
    expected = vq.lookup(out.indices, codebook, metric=metric)
    tolerance = 1e-5 if dtype == jnp.float32 else 5e-2
    chex.assert_trees_all_close(out.quantized.astype(jnp.float32), expected,
                                atol=tolerance, rtol=tolerance)
    np.testing.assert_array_equal(
        out.indices, search._plain_nearest_code_indices(z, codebook, metric=metric))

  @chex.variants(with_jit=True, without_jit=True)
  def test_straight_through_gradient_is_the_identity_on_z(self):
    z, codebook = _inputs()
    upstream = jax.random.normal(jax.random.key(9), z.shape)
    grad = self.variant(jax.grad(lambda z: jnp.sum(vq.quantize(z, codebook).quantized * upstream)))
    chex.assert_trees_all_close(grad(z), upstream)

  def test_codebook_loss_moves_only_the_codebook(self):
    z, codebook = _inputs()
    grad_z, grad_codebook = jax.grad(lambda z, c: vq.quantize(z, c).codebook_loss, (0, 1))(
        z, codebook)
    chex.assert_trees_all_close(grad_z, jnp.zeros_like(z))
    assert jnp.abs(grad_codebook).max() > 0

  def test_commitment_loss_moves_only_the_encoder_output(self):
    z, codebook = _inputs()
    grad_z, grad_codebook = jax.grad(lambda z, c: vq.quantize(z, c).commitment_loss, (0, 1))(
        z, codebook)
    chex.assert_trees_all_close(grad_codebook, jnp.zeros_like(codebook))
    z_q = vq.lookup(vq.quantize(z, codebook).indices, codebook)
    chex.assert_trees_all_close(grad_z, 0.25 * 2.0 * (z - z_q) / z.size, atol=1e-7)

  def test_beta_weighs_only_the_commitment_term(self):
    z, codebook = _inputs()
    base, doubled = vq.quantize(z, codebook, beta=0.25), vq.quantize(z, codebook, beta=0.5)
    chex.assert_trees_all_close(doubled.commitment_loss, 2.0 * base.commitment_loss)
    chex.assert_trees_all_close(doubled.codebook_loss, base.codebook_loss)
    z_q = vq.lookup(base.indices, codebook)
    chex.assert_trees_all_close(base.codebook_loss, jnp.mean((z - z_q) ** 2), rtol=1e-6)
    chex.assert_trees_all_close(base.commitment_loss, 0.25 * jnp.mean((z - z_q) ** 2), rtol=1e-6)

  def test_rotation_trick_gradient_is_the_scaled_transposed_rotation(self):
    z, codebook = _inputs(shape=(5, 6), codebook_size=7)
    upstream = jax.random.normal(jax.random.key(3), z.shape)
    grad = jax.grad(lambda z: jnp.sum(
        vq.quantize(z, codebook, estimator="rotation").quantized * upstream))(z)
    z_q = np.asarray(vq.lookup(vq.quantize(z, codebook).indices, codebook), np.float64)
    z64, g64 = np.asarray(z, np.float64), np.asarray(upstream, np.float64)
    for row in range(z.shape[0]):
      u = z64[row] / np.linalg.norm(z64[row])
      q = z_q[row] / np.linalg.norm(z_q[row])
      w = (u + q) / np.linalg.norm(u + q)
      rotation = np.eye(6) - 2 * np.outer(w, w) + 2 * np.outer(q, u)
      np.testing.assert_allclose(rotation @ z64[row] * np.linalg.norm(z_q[row])
                                 / np.linalg.norm(z64[row]), z_q[row], atol=1e-6)
      expected = np.linalg.norm(z_q[row]) / np.linalg.norm(z64[row]) * rotation.T @ g64[row]
      np.testing.assert_allclose(grad[row], expected, rtol=1e-4, atol=1e-5)

  def test_works_under_vmap(self):
    z, codebook = _inputs(shape=(3, 10, 8))
    batched = jax.vmap(lambda z: vq.quantize(z, codebook).indices)(z)
    np.testing.assert_array_equal(batched, vq.quantize(z, codebook).indices)


def test_pmapped_quantize_and_metrics_equal_one_device():
  z, codebook = _inputs(shape=(4, 6, 8), codebook_size=32)

  def step(z):
    out = vq.quantize(z, codebook)
    loss = jax.lax.pmean(out.codebook_loss, "batch")
    return out.indices, loss, metrics.codebook_metrics(out.indices, 32, axis_name="batch")

  indices, loss, usage = jax.pmap(step, axis_name="batch")(z)
  single = vq.quantize(z, codebook)
  np.testing.assert_array_equal(indices, single.indices)
  chex.assert_trees_all_close(loss[0], single.codebook_loss, rtol=1e-6)
  chex.assert_trees_all_close(jax.tree.map(lambda x: x[0], usage),
                              metrics.codebook_metrics(single.indices, 32), rtol=1e-6)


def test_matches_haiku_vector_quantizer():
  """An independent implementation with the same codebook gives the same everything."""
  z, codebook = _inputs(shape=(4, 5, 5, 8), codebook_size=24, seed=4)

  def haiku_forward(z):
    return hk.nets.VectorQuantizer(embedding_dim=8, num_embeddings=24, commitment_cost=0.25)(
        z, is_training=True)

  model = hk.transform(haiku_forward)
  params = model.init(jax.random.key(0), z)
  params = jax.tree.map(lambda _: codebook.T, params)  # haiku stores codes as [dim, K]
  theirs = model.apply(params, None, z)
  ours = vq.quantize(z, codebook)
  np.testing.assert_array_equal(ours.indices, theirs["encoding_indices"])
  chex.assert_trees_all_close(ours.quantized, theirs["quantize"], atol=1e-6)
  chex.assert_trees_all_close(ours.codebook_loss + ours.commitment_loss, theirs["loss"],
                              rtol=1e-5)
  chex.assert_trees_all_close(metrics.codebook_metrics(ours.indices, 24)["perplexity"],
                              theirs["perplexity"], rtol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(beta=-1.0), "beta is -1.0"),
    (dict(estimator="gumbel"), "unknown estimator"),
])
def test_bad_settings_raise(kwargs, message):
  z, codebook = _inputs()
  with pytest.raises(ValueError, match=message):
    vq.quantize(z, codebook, **kwargs)


def test_lookup_rejects_float_indices():
  with pytest.raises(ValueError, match="integers"):
    vq.lookup(jnp.zeros((3,)), jnp.zeros((4, 2)))
