"""Every test process sees 4 CPU devices, so pmapped code is tested against one device.

Tests run tiny models, whose time is compilation: XLA's CPU backend compiles them
unoptimized (numerics are the same operations; only fusion and scheduling differ).

A pmapped collective waits for all 4 device threads; XLA:CPU aborts the whole process
when one arrives more than 40 s after the others ("Termination timeout ... only 2 of 4
arrived"), which a test process starved of CPU by its neighbours can hit. The tests wait
up to 10 minutes instead (a 70 s straggler: aborted by default, finishes with this flag),
where the jaxlib is one that knows the flag (XLA refuses to start on an unknown flag).

A test that runs a pmapped step in a loop waits for each step's results before the next
(vqjax's train loop stays one step behind the same way): a loop that dispatches without
waiting puts more than XLA:CPU's 32 computations per device in flight on a loaded machine,
and its launch threads then wait on each other's collectives forever (seen with jaxlib
0.10.2: two devices in an all-reduce, the other two blocked on the per-device in-flight
semaphore; the process hangs until the timeout above aborts it).
"""
from importlib import metadata
import os


def _jaxlib_at_least(major: int, minor: int) -> bool:
  return tuple(int(part) for part in metadata.version("jaxlib").split(".")[:2]) >= (major,
                                                                                   minor)


os.environ["XLA_FLAGS"] = " ".join(filter(None, [
    os.environ.get("XLA_FLAGS"), "--xla_backend_optimization_level=0",
    "--xla_cpu_collective_call_terminate_timeout_seconds=600"
    if _jaxlib_at_least(0, 10) else None]))

import atexit  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

import chex  # noqa: E402  (after XLA_FLAGS, which jax reads when it starts its backend)
import jax  # noqa: E402

chex.set_n_cpu_devices(4)

# Programs that take a second or more to compile are kept in JAX's persistent compilation
# cache, one per test process, so that a test that builds the same program again (a
# restarted run, the same model in another test) reads it back: the discriminator-start
# restart test, 139 s -> 90 s. Set on jax.config, not in the environment: subprocesses that
# tests start do not inherit it, so no two processes write one cache (an unbounded cache
# writes without a lock).
_COMPILATION_CACHE = tempfile.mkdtemp(prefix="vqjax-tests-compilation-cache-")
atexit.register(shutil.rmtree, _COMPILATION_CACHE, ignore_errors=True)
jax.config.update("jax_compilation_cache_dir", _COMPILATION_CACHE)


import logging  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _absl_logger_level_restored():
  """An entry point's main() (cli.setup_console) and absl's flag restores set the absl
  logger's level; put it back, so that caplog sees INFO lines in whichever test runs next."""
  logger = logging.getLogger("absl")
  level = logger.level
  yield
  logger.setLevel(level)
