"""The jax.distributed hook initializes only when configured."""
import pytest

from vqjax.runner import distributed


def test_nothing_to_join_on_a_single_machine(monkeypatch):
  calls = []
  monkeypatch.setattr(distributed.jax.distributed, "initialize",
                      lambda **kwargs: calls.append(kwargs))
  assert not distributed.maybe_initialize(initialize="never", coordinator_address="h:1")
  assert not distributed.on_cloud_tpu_vm()
  assert not distributed.maybe_initialize()  # 'auto' off a TPU VM and with no coordinator
  assert calls == []


def test_a_coordinator_address_joins(monkeypatch):
  calls = []
  monkeypatch.setattr(distributed.jax.distributed, "initialize",
                      lambda **kwargs: calls.append(kwargs))
  monkeypatch.setattr(distributed.jax.distributed, "is_initialized", lambda: False)
  assert distributed.maybe_initialize(coordinator_address="10.0.0.1:1234", num_processes=2,
                                      process_id=1)
  assert calls == [dict(coordinator_address="10.0.0.1:1234", num_processes=2, process_id=1)]


def test_unknown_mode():
  with pytest.raises(ValueError, match="initialize is 'yes'; choose one of 'auto'"):
    distributed.maybe_initialize(initialize="yes")
