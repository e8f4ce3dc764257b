"""Checkpoints: round trip, interval and retention, falling back past a damaged step (found
by its manifest), and a checkpoint of another config left untouched; read-only restores
that change nothing; a full disk reported once, at the save that needs the space."""
import errno
import hashlib
import json
import logging
import os
import shutil

import chex
import jax
import jax.numpy as jnp
import optax
import pytest

from vqjax.train import parallel
from vqjax.train import manifest
from vqjax.train.checkpoints import (CheckpointMismatchError, CheckpointSaveError,
                                     Checkpoints)
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
  assert [p.name[:2] for p in (tmp_path / "checkpoints.corrupt").iterdir()] == ["4-"]
  # Training goes on from step 2 and saves step 4 again.
  assert checkpoints.save(_state(4))
  checkpoints.wait()
  assert int(checkpoints.restore_latest(_abstract()).step) == 4


def _saved(checkpoints, steps=(2, 4)):
  for step in steps:
    checkpoints.save(_state(step))
  checkpoints.wait()


def _array_file(step_dir):
  """The largest file of orbax's array data."""
  return max((p for p in (step_dir / "default").rglob("*") if p.is_file() and "/d/" in str(p)),
             key=lambda p: p.stat().st_size)


def _flip_bit(path):
  data = bytearray(path.read_bytes())
  data[len(data) // 2] ^= 0x10
  path.write_bytes(bytes(data))


def _garble(path):
  path.write_bytes(b"\x00garbage\xff" * 8)


def _truncate(path):
  os.truncate(path, path.stat().st_size // 2)


def _tree_hashes(directory):
  return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(directory.rglob("*")) if p.is_file()}


def _fell_back_from_4(checkpoints, caplog, file):
  with caplog.at_level(logging.WARNING):
    restored = checkpoints.restore_latest(_abstract())
  assert int(restored.step) == 2
  assert any("checkpoint at step 4" in r.getMessage() and file in r.getMessage()
             and "falling back" in r.getMessage() and ".corrupt/4-" in r.getMessage()
             for r in caplog.records), [r.getMessage() for r in caplog.records]
  assert checkpoints.all_steps() == [2]


def test_every_step_gets_a_manifest_of_its_files(tmp_path, checkpoints):
  _saved(checkpoints)
  for step in (2, 4):
    step_dir = tmp_path / "checkpoints" / str(step)
    written = json.loads((step_dir / manifest.MANIFEST_NAME).read_text())
    assert written["step"] == step
    hashes = _tree_hashes(step_dir)
    del hashes[manifest.MANIFEST_NAME]
    assert written["files"] == hashes and "default/_METADATA" in hashes


@pytest.mark.parametrize("damage", [_flip_bit, _garble, _truncate])
def test_damaged_array_data_falls_back(tmp_path, checkpoints, caplog, damage):
  _saved(checkpoints)
  array_file = _array_file(tmp_path / "checkpoints" / "4")
  damage(array_file)
  _fell_back_from_4(checkpoints, caplog, str(array_file))


@pytest.mark.parametrize("damage", [_flip_bit, _garble])
def test_damaged_orbax_metadata_falls_back(tmp_path, checkpoints, caplog, damage):
  _saved(checkpoints)
  damage(tmp_path / "checkpoints" / "4" / "default" / "_METADATA")
  _fell_back_from_4(checkpoints, caplog, "4/default/_METADATA")


@pytest.mark.parametrize("damage", [_flip_bit, _garble, _truncate])
def test_a_damaged_manifest_is_a_damaged_step(tmp_path, checkpoints, caplog, damage):
  _saved(checkpoints)
  damage(tmp_path / "checkpoints" / "4" / manifest.MANIFEST_NAME)
  # A flipped bit in a hash names the file whose hash it was, and the manifest.
  _fell_back_from_4(checkpoints, caplog, manifest.MANIFEST_NAME)


def test_a_step_without_manifest_is_restored_unverified(tmp_path, checkpoints, caplog):
  _saved(checkpoints)
  (tmp_path / "checkpoints" / "4" / manifest.MANIFEST_NAME).unlink()
  with caplog.at_level(logging.WARNING):
    restored = checkpoints.restore_latest(_abstract())
  assert int(restored.step) == 4
  assert any("step 4" in r.getMessage() and "unverified" in r.getMessage()
             for r in caplog.records)
  # Unverified, but what orbax cannot parse is still damage.
  _garble(tmp_path / "checkpoints" / "4" / "default" / "_METADATA")
  _fell_back_from_4(checkpoints, caplog, "4/default/_METADATA")


def test_repeated_quarantines_of_a_step_keep_every_copy(tmp_path, checkpoints, caplog):
  _saved(checkpoints)
  for attempt in range(2):
    _flip_bit(_array_file(tmp_path / "checkpoints" / "4"))
    _fell_back_from_4(checkpoints, caplog, "/4/default/")
    _saved(checkpoints, steps=(4,))
  copies = sorted((tmp_path / "checkpoints.corrupt").iterdir())
  assert len(copies) == 2 and all(p.name.startswith("4-") for p in copies)
  assert all((p / manifest.MANIFEST_NAME).is_file() for p in copies)
  assert int(checkpoints.restore_latest(_abstract()).step) == 4


def test_another_configs_checkpoint_is_a_clear_error_and_left_untouched(tmp_path, checkpoints):
  _saved(checkpoints)
  before = _tree_hashes(tmp_path)
  abstract = _abstract()
  codebook = jax.ShapeDtypeStruct((7, 2), jnp.float32, sharding=abstract.rng.sharding)
  wider = abstract.replace(quantizer_state={"quantizer": {"codebook": codebook}})
  with pytest.raises(CheckpointMismatchError,
                     match=r"step 4 .*different structure.*quantizer/codebook: checkpoint "
                           r"\(5, 2\), model \(7, 2\).*left untouched.*new --workdir"):
    checkpoints.restore_latest(wider)
  renamed = abstract.replace(quantizer_state={"other": abstract.rng})
  with pytest.raises(ValueError, match=r"quantizer_state/other: checkpoint missing"):
    checkpoints.restore_latest(renamed)
  assert _tree_hashes(tmp_path) == before
  assert checkpoints.all_steps() == [2, 4]


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


def test_read_only_skips_a_damaged_step_and_moves_nothing(tmp_path, checkpoints, caplog):
  _saved(checkpoints)
  _flip_bit(_array_file(tmp_path / "checkpoints" / "4"))
  unfinished = tmp_path / "checkpoints" / "6.orbax-checkpoint-tmp-1"
  shutil.copytree(tmp_path / "checkpoints" / "2", unfinished)
  before = _tree_hashes(tmp_path)
  reader = Checkpoints(str(tmp_path / "checkpoints"), save_every_steps=2, max_to_keep=2,
                       read_only=True)
  try:
    with caplog.at_level(logging.WARNING):
      restored = reader.restore_latest(_abstract())
    assert int(restored.step) == 2
    assert any("checkpoint at step 4" in r.getMessage() and "left in place" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]
    with pytest.raises(ValueError, match="opened read-only"):
      reader.save(_state(8))
  finally:
    reader.close()
  assert _tree_hashes(tmp_path) == before  # nothing moved, no temporary directory removed
  assert not (tmp_path / "checkpoints.corrupt").exists()


def test_read_only_creates_no_directory(tmp_path):
  reader = Checkpoints(str(tmp_path / "nothing"), save_every_steps=1, max_to_keep=1,
                       read_only=True)
  assert reader.restore_latest(_abstract()) is None
  reader.close()
  assert not (tmp_path / "nothing").exists()


def test_a_full_disk_fails_the_save_that_needs_the_space(tmp_path, checkpoints, monkeypatch):
  checkpoints.save(_state(2))
  checkpoints.wait()
  usage = shutil.disk_usage(tmp_path)
  monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=100))
  with pytest.raises(OSError, match=r"the disk is full: the checkpoint at step 4 needs about "
                     r"[\d,]+ bytes but .*checkpoints has 100 bytes free, so it was not "
                     r"written\. Free space .* resumes from .* step 2") as raised:
    checkpoints.save(_state(4))
  assert raised.value.errno == errno.ENOSPC
  checkpoints.close()  # nothing pending: nothing raised again
  assert checkpoints.all_steps() == [2]


def test_a_failed_background_write_is_reported_once_naming_its_step(checkpoints, monkeypatch,
                                                                   caplog):
  checkpoints.save(_state(2))
  def full_disk():
    raise OSError(errno.ENOSPC, "No space left on device")
  monkeypatch.setattr(checkpoints._manager, "wait_until_finished", full_disk)
  with caplog.at_level(logging.WARNING):
    with pytest.raises(CheckpointSaveError, match=r"the checkpoint at step 2 could not be "
                       r"written to .*checkpoints: the disk is full .*bytes free there now\)"):
      checkpoints.save(_state(4))  # the next save reports the failed one
    checkpoints.wait()  # reported once: not again
    checkpoints.close()
  assert not [r for r in caplog.records if "Traceback" in r.getMessage()]
