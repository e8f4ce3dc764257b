"""Tests for vqjax.quantizers.residual."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vqjax.quantizers import ema, grouped, levels, metrics, residual
from vqjax.quantizers.vector_quantization import quantize


def _batch(seed=0, shape=(4, 6, 4), levels=3, codebook_size=8):
  z_key, codebook_key = jax.random.split(jax.random.key(seed))
  z = jax.random.normal(z_key, shape)
  codebooks = jax.random.normal(codebook_key, (levels, codebook_size, shape[-1]))
  return z, codebooks


class ResidualTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_one_level_equals_plain_quantize(self):
    z, codebooks = _batch(levels=1)
    for estimator in ("straight_through", "rotation"):
      out = self.variant(lambda z, c, e=estimator: residual.quantize(z, c, estimator=e))(
          z, codebooks)
      plain = quantize(z, codebooks[0], estimator=estimator)
      chex.assert_trees_all_close(out.quantized, plain.quantized, atol=1e-6)
      chex.assert_trees_all_equal(out.indices[..., 0], plain.indices)
      chex.assert_trees_all_close(out.codebook_loss, plain.codebook_loss)
      chex.assert_trees_all_close(out.commitment_loss, plain.commitment_loss)

  def test_error_does_not_increase_with_levels_of_kmeans_codebooks(self):
    z = jax.random.normal(jax.random.key(0), (96, 4))
    codebooks = jax.jit(residual.kmeans_codebooks, static_argnums=(2, 3))(
        jax.random.key(1), z, 4, 8)
    error = jax.jit(lambda n: jnp.mean(jnp.square(
        residual.quantize(z, codebooks, active_levels=n).quantized - z)))
    errors = [float(error(n)) for n in range(1, 5)]
    assert all(b <= a + 1e-6 for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.5 * errors[0], errors

  @chex.variants(with_jit=True, without_jit=True)
  def test_quantizer_dropout_masks_the_last_levels(self):
    z, codebooks = _batch(levels=4)
    run = self.variant(
        lambda z, c, k: residual.quantize(z, c, key=k, dropout_levels=True))
    counts = set()
    for seed in range(12):
      out = run(z, codebooks, jax.random.key(seed))
      kept = np.asarray(out.indices >= 0)
      count = int(kept[0, 0].sum())
      counts.add(count)
      np.testing.assert_array_equal(kept, np.broadcast_to(np.arange(4) < count, kept.shape))
      fixed = residual.quantize(z, codebooks, active_levels=count)
      chex.assert_trees_all_close(out, fixed)
    assert len(counts) > 1 and counts <= {1, 2, 3, 4}, counts

  def test_gradients(self):
    z, codebooks = _batch()
    direction = jax.random.normal(jax.random.key(5), z.shape)

    def losses(z, codebooks):
      out = residual.quantize(z, codebooks)
      return jnp.sum(out.quantized * direction), out.codebook_loss, out.commitment_loss

    (z_output, c_output), (z_codebook, c_codebook), (z_commit, c_commit) = jax.jit(
        jax.jacrev(losses, argnums=(0, 1)))(z, codebooks)
    chex.assert_trees_all_close(z_output, direction)  # straight-through on z overall
    chex.assert_trees_all_equal(jnp.abs(z_codebook).max(), 0.0)
    assert float(jnp.abs(z_commit).max()) > 0
    chex.assert_trees_all_equal(jnp.abs(c_output).max(), 0.0)
    chex.assert_trees_all_equal(jnp.abs(c_commit).max(), 0.0)
    assert all(float(jnp.abs(c_codebook[q]).max()) > 0 for q in range(3))

  def test_residuals_are_passed_on_without_gradient_to_earlier_codebooks(self):
    z, codebooks = _batch()
    level_two_loss = lambda c, n: residual.quantize(z, c, active_levels=n).codebook_loss
    grads = jax.grad(level_two_loss)(codebooks, 2) - jax.grad(level_two_loss)(codebooks, 1)
    chex.assert_trees_all_equal(jnp.abs(grads[0]).max(), 0.0)
    assert float(jnp.abs(grads[1]).max()) > 0

  def test_lookup_round_trips_and_ignores_dropped_levels(self):
    z, codebooks = _batch(levels=4)
    for n in (2, 4):
      out = residual.quantize(z, codebooks, active_levels=n)
      chex.assert_trees_all_close(jax.jit(residual.indices_to_codes)(out.indices, codebooks),
                                  out.quantized, atol=1e-5)

  def test_inputs_are_the_residuals_each_level_quantized(self):
    z, codebooks = _batch()
    out = residual.quantize(z, codebooks)
    inputs = jax.jit(residual.residual_inputs)(z, out.indices, codebooks)
    for q in range(3):
      chex.assert_trees_all_equal(quantize(inputs[..., q, :], codebooks[q]).indices,
                                  out.indices[..., q])
    chex.assert_trees_all_close(inputs[..., 0, :], z)

  def test_bfloat16_inputs(self):
    z, codebooks = _batch()
    out = residual.quantize(z.astype(jnp.bfloat16), codebooks)
    assert out.quantized.dtype == jnp.bfloat16
    assert out.codebook_loss.dtype == jnp.float32 and out.commitment_loss.dtype == jnp.float32


class GroupedTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_equals_per_group_quantize_concatenated(self):
    z, codebooks = _batch(shape=(4, 6, 6), levels=3)
    codebooks = codebooks[..., :2]
    out = self.variant(grouped.quantize)(z, codebooks)
    groups = [quantize(z[..., 2 * g:2 * g + 2], codebooks[g]) for g in range(3)]
    chex.assert_trees_all_close(out.quantized,
                                jnp.concatenate([g.quantized for g in groups], axis=-1),
                                atol=1e-6)
    chex.assert_trees_all_equal(out.indices, jnp.stack([g.indices for g in groups], axis=-1))
    chex.assert_trees_all_close(out.codebook_loss, np.mean([g.codebook_loss for g in groups]))
    chex.assert_trees_all_close(out.commitment_loss,
                                np.mean([g.commitment_loss for g in groups]))
    chex.assert_trees_all_close(grouped.indices_to_codes(out.indices, codebooks), out.quantized,
                                atol=1e-6)

  def test_kmeans_codebooks_fit_each_group(self):
    z = jax.random.normal(jax.random.key(0), (64, 4))
    codebooks = jax.jit(grouped.kmeans_codebooks, static_argnums=(2, 3))(
        jax.random.key(1), z, 2, 4)
    chex.assert_shape(codebooks, (2, 4, 2))
    out = grouped.quantize(z, codebooks)
    assert float(jnp.mean(jnp.square(out.quantized - z))) < 0.6 * float(jnp.mean(z * z))


class LevelStateTest(chex.TestCase):

  def test_ema_update_levels_equals_ema_update_per_level(self):
    z, codebooks = _batch()

    @jax.jit
    def update(z, codebooks):
      out = residual.quantize(z, codebooks)
      inputs = residual.residual_inputs(z, out.indices, codebooks)
      state = levels.ema_update_levels(levels.ema_init_levels(codebooks), inputs,
                                         out.indices, decay=0.9)
      expected = [ema.update(ema.init(codebooks[q]), inputs[..., q, :], out.indices[..., q],
                             decay=0.9) for q in range(3)]
      return state, expected

    state, expected = update(z, codebooks)
    for q in range(3):
      chex.assert_trees_all_close(jax.tree.map(lambda x, q=q: x[q], state), expected[q])

  def test_dropped_levels_keep_their_state(self):
    z, codebooks = _batch()
    initial = levels.ema_init_levels(codebooks)

    @jax.jit
    def update(z):
      out = residual.quantize(z, codebooks, active_levels=1)
      inputs = residual.residual_inputs(z, out.indices, codebooks)
      return (levels.ema_update_levels(initial, inputs, out.indices),
              levels.update_usage_levels(jnp.ones((3, 8)), out.indices, decay=0.5))

    state, usage = update(z)
    assert not np.allclose(state.cluster_size[0], initial.cluster_size[0])
    chex.assert_trees_all_equal(jax.tree.map(lambda x: x[1:], state),
                                jax.tree.map(lambda x: x[1:], initial))
    chex.assert_trees_all_equal(usage[1:], jnp.ones((2, 8)))

  def test_pmapped_ema_and_restart_equal_one_device_on_the_concatenated_batch(self):
    z, codebooks = _batch(shape=(4, 8, 4))
    key = jax.random.key(7)

    def step(z, axis_name=None):
      out = residual.quantize(z, codebooks)
      inputs = residual.residual_inputs(z, out.indices, codebooks)
      state = levels.ema_update_levels(levels.ema_init_levels(codebooks), inputs,
                                         out.indices, axis_name=axis_name)
      state, dead = levels.restart_dead_codes_ema_levels(key, state, inputs, threshold=0.995,
                                                           axis_name=axis_name)
      return state, dead, levels.level_metrics(out.indices, 8, axis_name=axis_name)

    pmapped = jax.pmap(lambda z: step(z, "batch"), axis_name="batch")(z)
    single = jax.jit(step)(z.reshape(-1, 4))
    assert bool(jnp.any(single[1]))  # some codes were restarted
    for replica in range(4):
      chex.assert_trees_all_close(jax.tree.map(lambda x: x[replica], pmapped), single,
                                  rtol=1e-5, atol=1e-6)

  def test_restart_levels_replace_only_dead_codes_from_their_level(self):
    z, codebooks = _batch()
    usage = jnp.ones((3, 8)).at[1, 2].set(0.0)
    inputs = jnp.stack([z, z + 100.0, z - 100.0], axis=-2)
    new, dead = jax.jit(lambda *args: levels.restart_dead_codes_levels(*args, threshold=0.5))(
        jax.random.key(0), codebooks, usage, inputs)
    np.testing.assert_array_equal(dead, usage < 0.5)
    chex.assert_trees_all_equal(new.at[1, 2].set(0.0), codebooks.at[1, 2].set(0.0))
    assert float(new[1, 2].min()) > 90.0  # drawn from level 1's inputs

  def test_level_metrics_ignore_dropped_levels(self):
    indices = jnp.array([[0, 1, -1], [0, 2, -1], [1, 3, -1], [1, 3, -1]])
    result = jax.jit(levels.level_metrics, static_argnums=1)(indices, 4)
    for q in range(2):
      chex.assert_trees_all_close(jax.tree.map(lambda x, q=q: x[q], result),
                                  metrics.codebook_metrics(indices[:, q], 4))
    np.testing.assert_array_equal(result["dead_codes"][2], 4)


def test_bad_inputs_raise():
  z, codebooks = _batch()
  with pytest.raises(ValueError, match="last dimension 5"):
    residual.quantize(jnp.zeros((3, 5)), codebooks)
  with pytest.raises(ValueError, match="rank 3"):
    residual.quantize(z, codebooks[0])
  with pytest.raises(ValueError, match="key"):
    residual.quantize(z, codebooks, dropout_levels=True)
  with pytest.raises(ValueError, match="active_levels is 4"):
    residual.quantize(z, codebooks, active_levels=4)
  with pytest.raises(ValueError, match="dim 10 is not divisible by groups=4; use"):
    grouped.split_groups(jnp.zeros((2, 10)), 4)
  with pytest.raises(ValueError, match="last dimension 4"):
    grouped.quantize(z, jnp.zeros((2, 8, 3)))
  with pytest.raises(ValueError, match="indices have shape"):
    residual.indices_to_codes(jnp.zeros((5, 2), jnp.int32), codebooks)
