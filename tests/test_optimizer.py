"""The optimizer from config values: schedules, Adam and AdamW, clipping, and bad values."""
import jax.numpy as jnp
import numpy as np
import pytest

from vqjax.train import optimizer


def test_warmup_then_cosine_decay():
  schedule = optimizer.learning_rate_schedule(learning_rate=1e-3, total_steps=100,
                                              warmup_steps=10, end_learning_rate_fraction=0.1)
  np.testing.assert_allclose([schedule(0), schedule(5), schedule(10), schedule(100)],
                             [0.0, 5e-4, 1e-3, 1e-4], rtol=1e-5, atol=1e-9)
  assert 1e-4 < float(schedule(55)) < 1e-3


def test_constant_schedule_after_warmup():
  schedule = optimizer.learning_rate_schedule(learning_rate=2e-4, total_steps=100,
                                              warmup_steps=4, schedule="constant")
  np.testing.assert_allclose([schedule(2), schedule(4), schedule(99)], [1e-4, 2e-4, 2e-4],
                             rtol=1e-6)


@pytest.mark.parametrize("name,weight_decay", [("adam", 0.0), ("adamw", 0.1)])
def test_clipping_bounds_the_first_update(name, weight_decay):
  made = optimizer.make_optimizer(learning_rate=0.1, total_steps=10, name=name,
                                  weight_decay=weight_decay, grad_clip_norm=1.0, eps=1e6,
                                  schedule="constant")
  params = {"w": jnp.zeros(4)}
  grads = {"w": jnp.full(4, 100.0)}
  updates, _ = made.transform.update(grads, made.transform.init(params), params)
  # With a huge eps Adam is SGD scaled by lr / eps, so the update shows the clipped gradient.
  np.testing.assert_allclose(np.linalg.norm(updates["w"]) * 1e6 / 0.1, 1.0, rtol=1e-3)
  assert float(made.learning_rate(3)) == pytest.approx(0.1)


@pytest.mark.parametrize("kwargs,message", [
    (dict(learning_rate=0.0), "learning rate is 0.0; it must be > 0"),
    (dict(learning_rate=-1e-3), "learning rate is -0.001; it must be > 0"),
    (dict(name="sgd"), "unknown optimizer 'sgd'"),
    (dict(schedule="linear"), "unknown learning-rate schedule 'linear'"),
    (dict(warmup_steps=10), r"warmup_steps is 10; it must be an int in \[0, 10\)"),
    (dict(weight_decay=0.1), "weight_decay is 0.1 with optimizer 'adam'"),
    (dict(grad_clip_norm=0.0), "grad_clip_norm is 0.0"),
    (dict(total_steps=0), "number of training steps is 0"),
])
def test_bad_values(kwargs, message):
  with pytest.raises(ValueError, match=message):
    optimizer.make_optimizer(**{"learning_rate": 1e-3, "total_steps": 10, **kwargs})
