"""Checkpoints: round trip, interval and retention, and falling back past a damaged step."""
import logging
import os
import shutil

import chex
import jax
import jax.numpy as jnp
import optax
import pytest

from vqjax.train import parallel
from vqjax.train.checkpoints import Checkpoints
from vqjax.train.state import TrainState


def _state(step):
  params = {"encoder": {"kernel": jnp.full((3, 2), float(step))}, "bias": jnp.arange(4.0)}
  opt_state = optax.adam(1e-3).init(params)
  quantizer_state = {"quantizer": {"codebook": jnp.full((5, 2), -float(step))}}
  state = TrainState(step=jnp.int32(step), params=params, opt_state=opt_state,
                     quantizer_state=quantizer_state, rng=jax.random.PRNGKey(step))
  return jax.device_put(state, parallel.replicated_sharding())


def _abstract():
  sharding = parallel.replicated_sharding()
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
                      _state(0))


@pytest.fixture
def checkpoints(tmp_path):
  checkpoints = Checkpoints(str(tmp_path / "checkpoints"), save_every_steps=2, max_to_keep=2)
  yield checkpoints
  checkpoints.close()


def test_saves_on_the_interval_keeps_the_last_and_restores_the_latest(checkpoints):
  assert checkpoints.restore_latest(_abstract()) is None
  assert [checkpoints.due(step) for step in range(1, 5)] == [False, True, False, True]
  assert all(checkpoints.save(_state(step)) for step in (2, 4, 6, 7))
  assert not checkpoints.save(_state(7))  # already there: nothing to do
  checkpoints.wait()
  assert checkpoints.all_steps() == [6, 7]
  restored = checkpoints.restore_latest(_abstract())
  chex.assert_trees_all_equal(jax.device_get(restored), jax.device_get(_state(7)))
  leaf = jax.tree.leaves(restored)[0]
  assert leaf.sharding.is_equivalent_to(parallel.replicated_sharding(), leaf.ndim)


@pytest.mark.parametrize("damage", ["truncate_every_file", "delete_the_item"])
def test_a_damaged_latest_step_warns_and_the_previous_is_used(tmp_path, checkpoints, caplog,
                                                              damage):
  for step in (2, 4):
    checkpoints.save(_state(step))
  checkpoints.wait()
  latest = tmp_path / "checkpoints" / "4"
  if damage == "truncate_every_file":
    for path in latest.rglob("*"):
      if path.is_file():
        os.truncate(path, path.stat().st_size // 2)
  else:
    shutil.rmtree(latest / "default")
  with caplog.at_level(logging.WARNING):
    restored = checkpoints.restore_latest(_abstract())
  assert int(restored.step) == 2
  assert any("checkpoint at step 4" in r.getMessage() and "partial or corrupted" in r.getMessage()
             and "falling back" in r.getMessage() for r in caplog.records)
  assert checkpoints.all_steps() == [2]
  assert (tmp_path / "checkpoints.corrupt" / "4").is_dir()
  # Training goes on from step 2 and saves step 4 again.
  assert checkpoints.save(_state(4))
  checkpoints.wait()
  assert int(checkpoints.restore_latest(_abstract()).step) == 4


def test_an_unfinished_write_is_not_a_checkpoint(tmp_path):
  checkpoints = Checkpoints(str(tmp_path), save_every_steps=1, max_to_keep=None)
  checkpoints.save(_state(1))
  checkpoints.close()
  # What a process killed mid-save leaves: orbax's temporary directory for the next step.
  shutil.copytree(tmp_path / "1", tmp_path / "2.orbax-checkpoint-tmp-123")
  checkpoints = Checkpoints(str(tmp_path), save_every_steps=1, max_to_keep=None)
  assert checkpoints.all_steps() == [1]
  assert int(checkpoints.restore_latest(_abstract()).step) == 1
  checkpoints.close()


def test_bad_settings():
  with pytest.raises(ValueError, match="checkpoint_every_steps is 0"):
    Checkpoints("/tmp/unused", save_every_steps=0, max_to_keep=1)
  with pytest.raises(ValueError, match="keep_checkpoints is 0"):
    Checkpoints("/tmp/unused", save_every_steps=1, max_to_keep=0)
