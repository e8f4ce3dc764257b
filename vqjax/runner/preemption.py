"""Preemption: SIGTERM (how Cloud TPU and most schedulers announce it) asks the loop to
save a checkpoint at the current step and exit cleanly.

One process: a SIGTERM handler sets a flag that the loop reads after each step. Several
processes: every process must stop at the same step, so the loop asks JAX's preemption
sync point (jax.distributed's preemption service catches the signal) instead.
"""
from __future__ import annotations

import signal
import threading

import jax
from jax.experimental import multihost_utils


class Preemption:
  """Use as a context manager around the train loop; `requested(step)` after each step."""

  def __init__(self):
    self._signalled = threading.Event()
    self._previous = None

  def __enter__(self) -> "Preemption":
    if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def __exit__(self, *exc_info) -> None:
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
      self._previous = None

  def requested(self, step: int) -> bool:
    """True once a preemption was announced; the same answer on every process."""
    if jax.process_count() > 1:
      return multihost_utils.reached_preemption_sync_point(step)
    return self._signalled.is_set()

  def _handle(self, signum, frame) -> None:
    del signum, frame
    self._signalled.set()
