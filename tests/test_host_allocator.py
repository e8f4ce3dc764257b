"""vqjax.runner.host_allocator: glibc settings that keep XLA:CPU's per-run buffers mapped,
checked on a real program in fresh processes."""
import os
import subprocess
import sys
import textwrap

from vqjax.runner import host_allocator

# Runs a jitted program whose 64 MB intermediate (tanh(x), read by two reductions) is a
# temporary buffer, and prints the fewest minor page faults of 5 runs after warming up.
_FEWEST_FAULTS_PER_RUN = textwrap.dedent("""
    import resource
    import jax
    import jax.numpy as jnp
    def two_reductions(x):
      y = jnp.tanh(x)
      return y.sum(0) + y.sum(1)
    program = jax.jit(two_reductions)
    x = jnp.full((4096, 4096), 1e-3, jnp.float32)
    for _ in range(3):
      program(x).block_until_ready()
    faults = []
    for _ in range(5):
      before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
      program(x).block_until_ready()
      faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(min(faults))
""")


def _fewest_faults_per_run(environment) -> float:
  completed = subprocess.run([sys.executable, "-c", _FEWEST_FAULTS_PER_RUN], env=environment,
                             capture_output=True, text=True, check=True)
  return float(completed.stdout.split()[-1])


def test_retained_malloc_stops_a_program_faulting_in_its_buffers_on_every_run():
  # XLA's default pipeline: the tests' XLA_FLAGS (no optimization, 4 host devices) lay
  # the program's buffers out differently.
  default = {name: value for name, value in os.environ.items()
             if name not in (*host_allocator.RETAINED_MALLOC, "XLA_FLAGS")}
  default["JAX_PLATFORMS"] = "cpu"
  # Without the settings every run maps its buffer afresh: 64 MB is 16,384 pages.
  assert _fewest_faults_per_run(default) > 15000
  assert _fewest_faults_per_run(host_allocator.with_retained_malloc(default)) < 500


def test_the_environment_keeps_what_the_user_set():
  environment = host_allocator.with_retained_malloc({"MALLOC_ARENA_MAX": "2", "HOME": "/x"})
  assert environment == {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_MAX_": "0",
                         "MALLOC_TRIM_THRESHOLD_": str(2 ** 40), "HOME": "/x"}
  assert host_allocator.command_prefix() == (
      "MALLOC_ARENA_MAX=1 MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1099511627776")


def test_the_hint_names_what_is_missing_and_only_on_the_cpu():
  hint = host_allocator.hint({"MALLOC_ARENA_MAX": "1"}, "cpu")
  assert hint.startswith("MALLOC_MMAP_MAX_, MALLOC_TRIM_THRESHOLD_ not set")
  assert host_allocator.command_prefix() in hint
  assert host_allocator.hint(host_allocator.RETAINED_MALLOC, "cpu") is None
  assert host_allocator.hint({}, "gpu") is None
