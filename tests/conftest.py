"""Every test process sees 4 CPU devices, so pmapped code is tested against one device.

Tests run tiny models, whose time is compilation: XLA's CPU backend compiles them
unoptimized (numerics are the same operations; only fusion and scheduling differ).

XLA's intra-op thread pool is off: each of the 4 host devices' programs then runs on its
own thread, so an all-reduce never waits on a device whose work is queued behind threads
blocked in that same all-reduce (on 2 cores under load, XLA aborted such pmapped steps
with "Termination timeout ... only 2 of 4 arrived").

Every compiled program goes to JAX's persistent compilation cache, so that the same
program built again (a restarted run, a subprocess, another test of the same model) is
read back instead of compiled. The cache lives in $JAX_COMPILATION_CACHE_DIR when set,
else in the temporary directory; it is size-bounded, which makes JAX lock it (filelock),
so the xdist workers and their subprocesses share it safely. A cached program is the same
executable, so results do not change.
"""
import os
import tempfile

os.environ["XLA_FLAGS"] = " ".join(filter(None, [
    os.environ.get("XLA_FLAGS"), "--xla_backend_optimization_level=0",
    "--xla_cpu_multi_thread_eigen=false"]))
# Environment variables, so that the entry points tests start as subprocesses share them.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), f"vqjax-tests-xla-cache-{os.getuid()}"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(2 * 1024 ** 3))

import chex  # noqa: E402  (after XLA_FLAGS, which jax reads when it starts its backend)

chex.set_n_cpu_devices(4)


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
