"""The pmapped steps on 4 CPU devices equal the same steps on 1 device and the whole
global batch: gradients, optimizer, EMA codebooks, dead-code restarts, k-means, metrics."""
import chex
import jax
import numpy as np
import pytest

from vqjax.train import optimizer, parallel

from vqjax.runner import build

DEVICES = jax.devices()
MODELS = {
    # EMA codebook with dead-code restarts: psummed statistics and replica 0's key.
    "vqvae_ema": dict(name="vqvae", quantizer=dict(
        name="vq", codebook_size=32, dim=8, ema_decay=0.9, dead_code_threshold=1.0)),
    # Learned residual codebooks with restarts and quantizer dropout, on two levels.
    "vqvae2_residual": dict(name="vqvae2", quantizer=dict(
        name="residual", levels=2, codebook_size=16, dim=8, dead_code_threshold=1.0,
        dropout_levels=True)),
}


def _model(kind):
  return build.build_model(dict(image_channels=1, embedding_dim=8, hidden_channels=16,
                                residual_channels=8, num_residual_layers=1,
                                downsample_factor=2, **MODELS[kind]))


def _batch(devices, images, **extra):
  count = len(devices)
  return {"image": images.reshape(count, -1, *images.shape[1:]),
          **{k: v.reshape(count, -1) for k, v in extra.items()}}


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_train_steps_on_4_devices_equal_1_device(kind):
  assert len(DEVICES) == 4
  model = _model(kind)
  # eps=1: updates follow the gradients instead of their signs, which round-off could flip.
  tx = optimizer.make_optimizer(learning_rate=1e-2, total_steps=10, grad_clip_norm=1.0,
                                eps=1.0).transform
  images = np.random.RandomState(0).uniform(-1, 1, (3, 32, 8, 8, 1)).astype(np.float32)
  results = []
  for devices in (DEVICES, DEVICES[:1]):
    state = parallel.init_state(model, tx, seed=0, image_shape=(8, 8, 1), devices=devices)()
    fit = parallel.kmeans_step(model, iterations=2, devices=devices)
    state = fit(state, _batch(devices, images[0]), jax.random.PRNGKey(1))
    train = parallel.train_step(model, tx, devices=devices)
    for batch in images:
      state, metrics = train(state, _batch(devices, batch))
    results.append(jax.device_get((state, metrics)))
  (state4, metrics4), (state1, metrics1) = results
  assert int(state4.step) == 3
  chex.assert_trees_all_close(state4, state1, atol=2e-5, rtol=2e-5)
  chex.assert_trees_all_close(metrics4, metrics1, atol=2e-5, rtol=2e-5)


def test_eval_sums_only_valid_examples():
  model = _model("vqvae_ema")
  tx = optimizer.make_optimizer(learning_rate=1e-2, total_steps=10).transform
  state = parallel.init_state(model, tx, seed=0, image_shape=(8, 8, 1))()
  evaluate = parallel.eval_step(model, value_range=(-1.0, 1.0))
  images = np.random.RandomState(1).uniform(-1, 1, (32, 8, 8, 1)).astype(np.float32)
  mask = np.arange(32) < 21
  sums, reconstruction = evaluate(state, _batch(DEVICES, images, mask=mask))
  garbage = np.where(mask[:, None, None, None], images, 7.0).astype(np.float32)
  again, _ = evaluate(state, _batch(DEVICES, garbage, mask=mask))
  chex.assert_trees_all_close(sums, again)

  reconstruction = np.asarray(reconstruction).reshape(images.shape)[mask]
  errors = np.mean((reconstruction - images[mask]) ** 2, axis=(1, 2, 3))
  assert float(sums["count"]) == 21
  np.testing.assert_allclose(sums["squared_error"], errors.sum(), rtol=1e-5)
  np.testing.assert_allclose(sums["psnr"], np.sum(10 * np.log10(4 / errors)), rtol=1e-5)
  counts = np.asarray(sums["code_counts/"])
  assert counts.shape == (32,) and counts.sum() == 21 * 16  # 4x4 tokens per image
