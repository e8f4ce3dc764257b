"""Checkpoints of the train state with orbax: every N steps and at the end, the last K
kept, the latest restored on restart.

Orbax writes each step into a temporary directory and renames it when complete, so a
process killed mid-write leaves no half-written step (its temporary directory is removed
when the next run starts).

Damage is detected, not trusted. Once a save has finished (at the next save, wait() or
close()), the lead process writes `<step>/vqjax_manifest.json`, the sha256 of every file
of the step (vqjax/train/manifest.py), atomically. Restoring a step first checks every
file against it; a file that differs or is missing, or a manifest that cannot be parsed,
makes the step damaged. A step with no manifest (written by an older vqjax, or the run
stopped between the save and the manifest) is restored as orbax reads it, with a warning
that it is unverified: a flipped bit in its array data goes unnoticed, but files orbax
cannot parse still count as damage.

A damaged step (or one orbax cannot read) is moved to a new name,
`<directory>.corrupt/<step>-<UTC time>-<n>`, never over an earlier copy, with a warning
naming the step, the file and where it went, and the step before it is restored.

A read-only Checkpoints (read_only=True: what evaluation and sampling open) changes
nothing on disk: it creates no directory, removes no temporary one, saves nothing, and
restore_latest skips a damaged step with a warning naming it and why, leaving it in place,
and restores the step before it.

A save that cannot be written raises CheckpointSaveError (an OSError naming the step, the
directory and the fix), once: before writing, where the disk has less free space than the
state's bytes, and otherwise at the next save, wait() or close(), for the step whose
background write failed. Later wait() and close() calls do not raise it again.

A step whose stored tree (leaf paths and shapes, from orbax's metadata) differs from the
model's abstract state was written by another config: that raises
CheckpointMismatchError, a ValueError naming the differing leaves, and moves nothing.
Without a manifest, a flipped bit in orbax's metadata could read as such a mismatch: the
error then is the safe side, since nothing is moved.

Several processes: every process calls save and restore (orbax has the first write the
metadata; the first writes the manifest, and all check it and agree on the verdict).
Orbax takes only global arrays there, so the state, which pmap holds whole on each
process's own devices, is saved and restored as arrays whole on every device of every
process, and handed back in pmap's per-process form.
"""
from __future__ import annotations

import datetime
import errno
import os
import shutil
from typing import Sequence

from absl import logging
from etils import epath
import jax
from jax.experimental import multihost_utils
import numpy as np
import orbax.checkpoint as ocp

from vqjax.train import manifest
from vqjax.train.state import TrainState


class CheckpointMismatchError(ValueError):
  """A checkpoint written by another config: its tree differs from the model's."""


class CheckpointSaveError(OSError):
  """A checkpoint that could not be written (a full disk, most often)."""


class Checkpoints:
  """The checkpoints of one run, in `directory`.

  due(step) says whether step is one to save at (a multiple of save_every_steps);
  save(state) writes; writes finish in the background, so call wait() before relying on
  them, and close() at the end (both also write the finished step's manifest).
  read_only: open them for reading only (see the module docstring).
  """

  def __init__(self, directory: str, *, save_every_steps: int, max_to_keep: int | None,
               read_only: bool = False):
    if not isinstance(save_every_steps, int) or save_every_steps < 1:
      raise ValueError(f"checkpoint_every_steps is {save_every_steps!r}; it must be an int >= 1")
    if max_to_keep is not None and (not isinstance(max_to_keep, int) or max_to_keep < 1):
      raise ValueError(f"keep_checkpoints is {max_to_keep!r}; it must be an int >= 1, or None "
                       "to keep all")
    # A URL such as gs://bucket/dir (which a pod's processes share) is absolute already.
    self.directory = directory if "://" in directory else os.path.abspath(directory)
    self.save_every_steps = save_every_steps
    self.read_only = read_only
    # Read-only: no retention or interval either (orbax warns that they are ignored).
    self._options = ocp.CheckpointManagerOptions(
        max_to_keep=None if read_only else max_to_keep, create=not read_only,
        read_only=read_only, cleanup_tmp_directories=not read_only,
        **({"save_interval_steps": 0} if read_only else {}))
    self._manager = self._new_manager()
    self._unhashed_step = None  # saved, its manifest not yet written
    self._failed = False  # a failed write was reported: close() does not raise it again

  def all_steps(self) -> Sequence[int]:
    return sorted(self._manager.all_steps())

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def due(self, step: int) -> bool:
    return step % self.save_every_steps == 0

  def save(self, state: TrainState) -> bool:
    """Saves state at its step; False if that step is already saved. Raises
    CheckpointSaveError where the disk lacks the space, or an earlier save failed."""
    if self.read_only:
      raise ValueError(f"the checkpoints in {self.directory} were opened read-only; open "
                       "them with read_only=False to save")
    self._write_manifest()
    step = int(jax.device_get(state.step))
    if step in self._manager.all_steps():
      return False
    self._check_free_space(state, step)
    saved = self._manager.save(step, args=ocp.args.StandardSave(_to_global(state)), force=True)
    if saved:
      self._unhashed_step = step
    return saved

  def restore(self, abstract_state: TrainState, step: int) -> TrainState:
    """The state saved at `step`, shaped and placed like abstract_state.

    Raises manifest.DamagedStepError for a step whose files fail their manifest,
    CheckpointMismatchError for one written by another config.
    """
    self._write_manifest()
    if not self._verify(step):
      logging.warning(
          "checkpoint at step %d in %s has no %s (written by an older vqjax, or the run "
          "stopped before it was written), so it is unverified: restoring it as orbax reads "
          "it", step, self.directory, manifest.MANIFEST_NAME)
    self._check_structure(abstract_state, step)
    target = _to_global(abstract_state)
    state = _to_host_local(self._manager.restore(step, args=ocp.args.StandardRestore(target)))
    restored_step = int(jax.device_get(state.step))
    if restored_step != step:
      raise ValueError(f"checkpoint {step} holds a state at step {restored_step}")
    return state

  def restore_latest(self, abstract_state: TrainState) -> TrainState | None:
    """The latest readable checkpoint, or None if there is none.

    Damaged or unreadable steps are moved aside (see the module docstring) with a warning
    naming what failed, so that training goes on from the step before and saves over
    them; read-only, they are skipped and left in place, with a warning. A step written
    by another config raises CheckpointMismatchError.
    """
    for step in reversed(self.all_steps()):
      try:
        return self.restore(abstract_state, step)
      except CheckpointMismatchError:
        raise
      except Exception as error:  # pylint: disable=broad-except  # any failure: try older
        if self.read_only:
          self._skip(step, error)
        else:
          self._quarantine(step, error)
    return None

  def wait(self) -> None:
    """Blocks until every save has been written, manifest included; raises
    CheckpointSaveError (once) if one failed."""
    self._write_manifest()

  def close(self) -> None:
    try:
      self.wait()
    finally:
      try:
        self._manager.close()  # waits again: a failed write raises again
      except Exception:  # pylint: disable=broad-except
        if not self._failed:
          raise

  def _new_manager(self) -> ocp.CheckpointManager:
    # The handler named up front lets item_metadata read steps this process did not save.
    return ocp.CheckpointManager(self.directory, options=self._options,
                                 item_handlers=ocp.StandardCheckpointHandler())

  def _step_dir(self, step: int) -> epath.Path:
    return epath.Path(self.directory) / str(step)

  def _write_manifest(self) -> None:
    step, self._unhashed_step = self._unhashed_step, None
    if step is None:
      return
    self._wait_for_save(step)
    if jax.process_index() == 0 and self._step_dir(step).exists():
      manifest.write(self._step_dir(step), step)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices(f"vqjax checkpoint {step} manifest written")

  def _wait_for_save(self, step: int) -> None:
    """Waits for the background write of step; a failed write raises CheckpointSaveError
    naming it, once."""
    try:
      self._manager.wait_until_finished()
    except Exception as error:  # pylint: disable=broad-except  # orbax raises many kinds
      self._failed = True
      detail = str(error).splitlines()[0][:400] if str(error) else type(error).__name__
      full = ("No space left on device" in str(error)
              or getattr(error, "errno", None) == errno.ENOSPC)
      failure = CheckpointSaveError(
          errno.ENOSPC if full else errno.EIO,
          f"the checkpoint at step {step} could not be written to {self.directory}: "
          f"{'the disk is full' if full else 'the write failed'} ({detail}; "
          f"{_free_space_text(self.directory)}). {self._fix_text()}")
      if full:  # orbax has logged its tracebacks already: the one message is enough
        raise failure from None
      raise failure from error

  def _check_free_space(self, state: TrainState, step: int) -> None:
    """Raises CheckpointSaveError before writing when the disk's free space is under the
    state's bytes (checkpoints compress little: trained weights look random)."""
    needed = sum(int(np.prod(np.shape(leaf))) * np.dtype(leaf.dtype).itemsize
                 for leaf in jax.tree.leaves(state) if hasattr(leaf, "dtype"))
    free = _free_bytes(self.directory)
    short = free is not None and free < needed
    if jax.process_count() > 1:  # every process refuses, or none does
      short = bool(np.any(multihost_utils.process_allgather(np.asarray(short, np.int32))))
    if short:
      raise CheckpointSaveError(
          errno.ENOSPC,
          f"the disk is full: the checkpoint at step {step} needs about {needed:,} bytes "
          f"but {self.directory} has "
          f"{'too few' if free is None else f'{free:,}'} bytes free, so it was not written. "
          f"{self._fix_text()}")

  def _fix_text(self) -> str:
    latest = self._manager.latest_step()
    resume = ("training resumes from the latest complete checkpoint, "
              f"step {latest}" if latest is not None else "no checkpoint was written yet")
    return (f"Free space on that disk (or lower config.train.keep_checkpoints), or train "
            f"in a --workdir on a bigger disk, and run the same command again: {resume}")

  def _verify(self, step: int) -> bool:
    """True if the step's files match its manifest, False if it has none; raises
    manifest.DamagedStepError if any process finds damage."""
    damage, verified = None, False
    try:
      verified = manifest.verify(self._step_dir(step), step)
    except manifest.DamagedStepError as error:
      damage = error
    if jax.process_count() > 1:
      votes = multihost_utils.process_allgather(np.asarray(damage is not None, np.int32))
      if damage is None and np.any(votes):
        damage = manifest.DamagedStepError(step, str(self._step_dir(step)),
                                           "was found damaged by another process")
    if damage is not None:
      raise damage
    return verified

  def _check_structure(self, abstract_state: TrainState, step: int) -> None:
    """Raises CheckpointMismatchError if the stored leaves or shapes differ from the model's."""
    try:
      stored = _leaf_shapes(self._manager.item_metadata(step).tree)
    except Exception as error:  # pylint: disable=broad-except  # unreadable: damage
      raise manifest.DamagedStepError(step, str(self._step_dir(step) / "default" / "_METADATA"),
                                      f"cannot be read as orbax's metadata ({error})") from error
    expected = _leaf_shapes(abstract_state)
    if stored == expected:
      return
    differences = [f"{path}: checkpoint {stored.get(path, 'missing')}, model "
                   f"{expected.get(path, 'missing')}"
                   for path in sorted(set(stored) | set(expected))
                   if stored.get(path) != expected.get(path)]
    raise CheckpointMismatchError(
        f"checkpoint at step {step} in {self.directory} has a different structure from the "
        f"model's state: it was written by another config ({len(differences)} leaves differ: "
        f"{'; '.join(differences[:5])}{'; ...' if len(differences) > 5 else ''}). It was left "
        "untouched. Train this config in a new --workdir, or restore the config that wrote "
        "the checkpoint (its config is saved in the workdir)")

  def _quarantine(self, step: int, error: Exception) -> None:
    self.move_aside(step, f"is partial or corrupted and cannot be restored "
                          f"({type(error).__name__}: {str(error)[:600]}); falling back to "
                          "the previous checkpoint")

  def move_aside(self, step: int, reason: str, *, folder: str = "corrupt") -> str:
    """Moves step to <directory>.<folder>/<step>-<UTC time>-<n>, never over an earlier
    copy, with a warning naming why (reason) and where; returns where."""
    source = self._step_dir(step)
    aside = epath.Path(f"{self.directory}.{folder}")
    self._manager.close()  # a failed restore can leave the manager's view of items stale
    target = f"{aside}/{step}-<UTC time>-<n> (named by process 0)"
    if jax.process_index() == 0:  # one process moves it (every process failed to read it)
      stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
      aside.mkdir(parents=True, exist_ok=True)
      copy = 0
      while (aside / f"{step}-{stamp}-{copy}").exists():  # never over an earlier copy
        copy += 1
      target = aside / f"{step}-{stamp}-{copy}"
      source.rename(target)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices(f"vqjax checkpoint {step} moved aside")
    self._manager = self._new_manager()
    logging.warning("checkpoint at step %d in %s %s; moved it to %s", step, self.directory,
                    reason, target)
    return str(target)


  def _skip(self, step: int, error: Exception) -> None:
    logging.warning(
        "checkpoint at step %d in %s is partial or corrupted and cannot be restored "
        "(%s: %s); read-only, so it was left in place: using the previous checkpoint",
        step, self.directory, type(error).__name__, str(error)[:600])
    self._manager.close()  # a failed restore can leave the manager's view of items stale
    self._manager = self._new_manager()


def _free_bytes(directory: str) -> int | None:
  """The free bytes of the disk holding directory (its nearest existing parent); None
  for a URL (gs://...), whose space is not ours to count."""
  if "://" in directory:
    return None
  path = directory
  while not os.path.exists(path) and os.path.dirname(path) != path:
    path = os.path.dirname(path)
  return shutil.disk_usage(path).free


def _free_space_text(directory: str) -> str:
  free = _free_bytes(directory)
  return "free space unknown" if free is None else f"{free:,} bytes free there now"


def _leaf_shapes(tree) -> dict[str, tuple]:
  """{'params/encoder/kernel': shape, ...} for a state, its abstract state, or orbax's
  metadata tree (where dataclasses and named tuples are dicts and tuples lists)."""
  def name(key):
    for attribute in ("key", "name", "idx"):
      if hasattr(key, attribute):
        return str(getattr(key, attribute))
    return str(key)
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  def shape(leaf):  # a Python scalar leaf has none
    return np.shape(leaf) if getattr(leaf, "shape", None) is None else tuple(leaf.shape)
  return {"/".join(name(key) for key in path): shape(leaf) for path, leaf in leaves}


_REPLICATED = jax.sharding.PartitionSpec()


def _global_mesh() -> jax.sharding.Mesh:
  return jax.sharding.Mesh(np.asarray(jax.devices()), ("devices",))


def _to_global(tree):
  """pmap's per-process replicated arrays (or their abstract shapes) as global arrays;
  unchanged in a single process, where they already are."""
  if jax.process_count() == 1:
    return tree
  mesh = _global_mesh()
  sharding = jax.sharding.NamedSharding(mesh, _REPLICATED)
  return jax.tree.map(
      lambda x: (jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)
                 if isinstance(x, jax.ShapeDtypeStruct)
                 else multihost_utils.host_local_array_to_global_array(x, mesh, _REPLICATED)),
      tree)


def _to_host_local(tree):
  """The inverse of _to_global: each process's arrays on its own devices, as pmap takes them."""
  if jax.process_count() == 1:
    return tree
  return multihost_utils.global_array_to_host_local_array(tree, _global_mesh(), _REPLICATED)
