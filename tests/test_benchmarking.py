"""experiments.benchmarking: a worker process is held to its thread count and keeps the
other XLA flags of its parent (the tests' unoptimized compilation, a user's own)."""
import pytest

from experiments import benchmarking
from vqjax.runner import host_allocator


def test_a_worker_keeps_other_xla_flags_and_owns_its_threads_and_devices(monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=0 "
                     "--xla_force_host_platform_device_count=4 "
                     "--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads=8")
  env = benchmarking.worker_environment(1)
  assert env["XLA_FLAGS"].split() == ["--xla_backend_optimization_level=0",
                                      "--xla_cpu_multi_thread_eigen=false",
                                      "intra_op_parallelism_threads=1"]
  assert env["OMP_NUM_THREADS"] == "1" and env["JAX_PLATFORMS"] == "cpu"
  for name, value in host_allocator.RETAINED_MALLOC.items():
    assert env[name] == value
  monkeypatch.setenv("MALLOC_ARENA_MAX", "4")  # a user's own setting is kept
  assert benchmarking.worker_environment(1)["MALLOC_ARENA_MAX"] == "4"
  monkeypatch.delenv("XLA_FLAGS")
  assert benchmarking.worker_environment(2)["XLA_FLAGS"].split() == [
      "--xla_cpu_multi_thread_eigen=true", "intra_op_parallelism_threads=2"]


def test_thread_counts_are_checked():
  assert benchmarking.thread_counts("1,2", 5) == [1, 2]
  with pytest.raises(ValueError, match="must be >= 1"):
    benchmarking.thread_counts("0,2", 5)
  with pytest.raises(ValueError, match="must be >= 1"):
    benchmarking.thread_counts("1", 0)
