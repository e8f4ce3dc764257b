"""SIGTERM sets the preemption flag inside the context and nowhere else."""
import os
import signal

from vqjax.runner.preemption import Preemption


def test_sigterm_inside_the_context_is_a_preemption_request():
  before = signal.getsignal(signal.SIGTERM)
  with Preemption() as preemption:
    assert not preemption.requested(1)
    os.kill(os.getpid(), signal.SIGTERM)
    assert preemption.requested(2) and preemption.requested(3)
  assert signal.getsignal(signal.SIGTERM) is before
