"""Checkpoints of the train state with orbax: every N steps and at the end, the last K
kept, the latest restored on restart.

Orbax writes each step into a temporary directory and renames it when complete, so a
process killed mid-write leaves no half-written step (its temporary directory is removed
when the next run starts). A step that is there but cannot be read back (files damaged
or missing) is moved to `<directory>.corrupt/<step>` with a warning, and the one before
it is restored.

Several processes: every process calls save and restore (orbax has the first write the
metadata). Orbax takes only global arrays there, so the state, which pmap holds whole on
each process's own devices, is saved and restored as arrays whole on every device of
every process, and handed back in pmap's per-process form.
"""
from __future__ import annotations

import os
from typing import Sequence

from absl import logging
from etils import epath
import jax
from jax.experimental import multihost_utils
import numpy as np
import orbax.checkpoint as ocp

from vqjax.train.state import TrainState


class Checkpoints:
  """The checkpoints of one run, in `directory`.

  due(step) says whether step is one to save at (a multiple of save_every_steps);
  save(state) writes; writes finish in the background, so call wait() before relying on
  them, and close() at the end.
  """

  def __init__(self, directory: str, *, save_every_steps: int, max_to_keep: int | None):
    if not isinstance(save_every_steps, int) or save_every_steps < 1:
      raise ValueError(f"checkpoint_every_steps is {save_every_steps!r}; it must be an int >= 1")
    if max_to_keep is not None and (not isinstance(max_to_keep, int) or max_to_keep < 1):
      raise ValueError(f"keep_checkpoints is {max_to_keep!r}; it must be an int >= 1, or None "
                       "to keep all")
    # A URL such as gs://bucket/dir (which a pod's processes share) is absolute already.
    self.directory = directory if "://" in directory else os.path.abspath(directory)
    self.save_every_steps = save_every_steps
    self._options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                                 cleanup_tmp_directories=True)
    self._manager = ocp.CheckpointManager(self.directory, options=self._options)

  def all_steps(self) -> Sequence[int]:
    return sorted(self._manager.all_steps())

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def due(self, step: int) -> bool:
    return step % self.save_every_steps == 0

  def save(self, state: TrainState) -> bool:
    """Saves state at its step; False if that step is already saved."""
    step = int(jax.device_get(state.step))
    if step in self._manager.all_steps():
      return False
    return self._manager.save(step, args=ocp.args.StandardSave(_to_global(state)), force=True)

  def restore(self, abstract_state: TrainState, step: int) -> TrainState:
    """The state saved at `step`, shaped and placed like abstract_state."""
    target = _to_global(abstract_state)
    state = _to_host_local(self._manager.restore(step, args=ocp.args.StandardRestore(target)))
    restored_step = int(jax.device_get(state.step))
    if restored_step != step:
      raise ValueError(f"checkpoint {step} holds a state at step {restored_step}")
    return state

  def restore_latest(self, abstract_state: TrainState) -> TrainState | None:
    """The latest readable checkpoint, or None if there is none.

    Unreadable steps are moved aside (see the module docstring) with a warning naming
    what failed, so that training goes on from the step before and saves over them.
    """
    for step in reversed(self.all_steps()):
      try:
        return self.restore(abstract_state, step)
      except Exception as error:  # pylint: disable=broad-except  # any failure: try older
        self._quarantine(step, error)
    return None

  def wait(self) -> None:
    """Blocks until every save has been written."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()

  def _quarantine(self, step: int, error: Exception) -> None:
    source = epath.Path(self.directory) / str(step)
    target = epath.Path(self.directory + ".corrupt") / str(step)
    self._manager.close()  # a failed restore can leave the manager's view of items stale
    if jax.process_index() == 0:  # one process moves it (every process failed to read it)
      if target.exists():
        target.rmtree()
      target.parent.mkdir(parents=True, exist_ok=True)
      source.rename(target)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices(f"vqjax checkpoint {step} moved aside")
    self._manager = ocp.CheckpointManager(self.directory, options=self._options)
    message = (f"checkpoint at step {step} in {self.directory} is partial or corrupted and "
               f"cannot be restored ({type(error).__name__}: {str(error)[:300]}); moved it to "
               f"{target} and falling back to the previous checkpoint")
    logging.warning(message)


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
