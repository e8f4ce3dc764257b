"""The per-device steps on one device (axis_name=None): losses, state updates, k-means
initialization and masked evaluation sums."""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vqjax.train import optimizer, state as train_state, steps

from vqjax.runner import build

# Tiny models run in milliseconds; the unoptimized CPU backend halves their compile time.
_jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})


def _model(model="vqvae", **quantizer):
  quantizer = {"name": "vq", "codebook_size": 16, "dim": 8, **quantizer}
  return build.build_model(dict(name=model, image_channels=1, embedding_dim=8,
                                hidden_channels=16, residual_channels=8,
                                num_residual_layers=1, downsample_factor=2,
                                quantizer=quantizer), axis_name=None)


def _setup(model, **kwargs):
  tx = optimizer.make_optimizer(learning_rate=3e-3, total_steps=100, **kwargs).transform
  images = jnp.asarray(np.random.RandomState(0).uniform(-1, 1, (16, 8, 8, 1)), jnp.float32)
  state = _jit(lambda x: train_state.create_train_state(model, tx, x, seed=0))(images[:1])
  return tx, state, {"image": images}


def test_train_step_lowers_the_loss_and_updates_the_ema_codebook():
  model = _model(ema_decay=0.9)
  tx, state, batch = _setup(model)
  step = _jit(functools.partial(steps.train_step, model=model, optimizer=tx, axis_name=None))
  first, metrics = step(state, batch)
  later = first
  for _ in range(20):
    later, last = step(later, batch)
  assert int(first.step) == 1 and int(later.step) == 21
  assert set(metrics) >= {"loss", "reconstruction_loss", "quantizer_loss", "codebook_loss",
                          "commitment_loss", "perplexity", "codes_used_fraction", "dead_codes",
                          "grad_norm"}
  np.testing.assert_allclose(metrics["loss"],
                             metrics["reconstruction_loss"] + metrics["quantizer_loss"],
                             rtol=1e-6)
  assert float(last["reconstruction_loss"]) < float(metrics["reconstruction_loss"])
  codebook = lambda s: s.quantizer_state["quantizer"]["codebook"]
  assert not np.allclose(codebook(first), codebook(state))
  chex.assert_trees_all_equal(first.rng, state.rng)  # the base key stays; steps fold it
  # The same state and batch give the same step: keys come from (rng, step) alone.
  chex.assert_trees_all_equal(step(state, batch), (first, metrics))


def test_quantizer_loss_weights_reweigh_the_terms():
  model = _model()
  tx, state, batch = _setup(model)
  weights = {"commitment_loss": 0.0, "codebook_loss": 2.0}
  step = _jit(functools.partial(steps.train_step, model=model, optimizer=tx, axis_name=None,
                                quantizer_loss_weights=weights))
  _, metrics = step(state, batch)
  np.testing.assert_allclose(metrics["quantizer_loss"], 2 * metrics["codebook_loss"], rtol=1e-6)
  with pytest.raises(ValueError, match=r"quantizer_loss_weights names \['kl_loss'\]"):
    jax.eval_shape(functools.partial(steps.train_step, model=model, optimizer=tx,
                                     axis_name=None, quantizer_loss_weights={"kl_loss": 1.0}),
                   state, batch)


def test_kmeans_step_fits_every_codebook_of_vqvae2():
  model = _model("vqvae2", ema_decay=0.9)
  _, state, batch = _setup(model)
  fitted = _jit(functools.partial(steps.kmeans_step, model=model, iterations=3))(
      state, batch, jax.random.PRNGKey(0))
  for level in ("top_quantizer", "bottom_quantizer"):
    before, after = (s.quantizer_state[level] for s in (state, fitted))
    assert not np.allclose(before["codebook"], after["codebook"]), level
    np.testing.assert_array_equal(after["cluster_size"], np.ones(16))  # EMA statistics reset
  chex.assert_trees_all_equal(fitted.params, state.params)  # EMA codebooks are not params


def test_eval_step_counts_codes_per_level_of_valid_examples():
  model = _model(name="residual", levels=2)
  _, state, batch = _setup(model)
  mask = np.arange(16) < 10
  sums, reconstruction = _jit(functools.partial(steps.eval_step, model=model, axis_name=None))(
      state, {**batch, "mask": mask})
  assert reconstruction.shape == (16, 8, 8, 1) and float(sums["count"]) == 10
  counts = sums["code_counts/"]
  assert counts.shape == (2, 16)
  np.testing.assert_array_equal(counts.sum(-1), [10 * 16, 10 * 16])  # 4x4 tokens an image
