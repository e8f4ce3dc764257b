"""Preemption: SIGTERM (how Cloud TPU and most schedulers announce it) asks a run to
save a checkpoint at the current step and exit cleanly, from the first line to the last.

One process: a SIGTERM handler sets a process-wide flag. The task entry points
(train_tokenizer, train_prior) run inside `sigterm_handled()`, so a SIGTERM during
start-up (reading data, building the model) is caught too; the loop's `Preemption` context reads the same flag after each step and at start
and end, and clears it when the run it guards returns. Several processes: every process
must stop at the same step, so the loop asks JAX's preemption sync point (jax.distributed's
preemption service catches the signal) after each step instead.
"""
from __future__ import annotations

import contextlib
import signal
import threading

import jax
from jax.experimental import multihost_utils

_SIGNALLED = threading.Event()


def _handle(signum, frame) -> None:
  del signum, frame
  _SIGNALLED.set()


@contextlib.contextmanager
def sigterm_handled():
  """Within the block SIGTERM sets the preemption flag instead of killing the process (a
  single process on its main thread; jax.distributed's preemption service handles it
  under several). Task entry points wrap their whole work in it, start-up included."""
  previous = None
  if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
    previous = signal.signal(signal.SIGTERM, _handle)
  try:
    yield
  finally:
    if previous is not None:
      signal.signal(signal.SIGTERM, previous)


class Preemption:
  """Use as a context manager around a run; `requested(step)` after each step,
  `signalled()` where no step is being synchronized (start-up, the final save)."""

  def __init__(self):
    self._previous = None

  def __enter__(self) -> "Preemption":
    if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, _handle)
    return self

  def __exit__(self, *exc_info) -> None:
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
      self._previous = None
    _SIGNALLED.clear()  # this run has answered it

  def requested(self, step: int) -> bool:
    """True once a preemption was announced; the same answer on every process."""
    if jax.process_count() > 1:
      return multihost_utils.reached_preemption_sync_point(step)
    return _SIGNALLED.is_set()

  def signalled(self) -> bool:
    """This process's flag alone (False under several processes)."""
    return jax.process_count() == 1 and _SIGNALLED.is_set()
