"""experiments.train as a process: killed with SIGKILL and restarted it ends where an
uninterrupted run ends; SIGTERM saves a checkpoint at the current step and exits 0."""
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import chex
import jax
import pytest

import train_testing
from vqjax.runner import experiment, tokenizer_task
from vqjax.train.checkpoints import Checkpoints

REPO = pathlib.Path(__file__).resolve().parents[1]
STEPS = 60


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return train_testing.prepare_digits(str(tmp_path_factory.mktemp("tfds")))


@pytest.fixture(scope="module")
def compilation_cache(tmp_path_factory):
  """Shared by the processes of this module, so that only the first compiles."""
  return str(tmp_path_factory.mktemp("jax_cache"))


def _start(workdir, data_dir, cache, *overrides):
  """experiments.train on digits:tiny with this process's XLA_FLAGS (4 CPU devices)."""
  env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": cache,
         "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "TF_CPP_MIN_LOG_LEVEL": "2"}
  log = open(os.path.join(workdir + ".log"), "a")  # a file: a full pipe would block it
  command = [sys.executable, "-m", "experiments.train",
             "--config=experiments/configs/digits.py:tiny", f"--workdir={workdir}",
             f"--config.data.data_dir={data_dir}", *overrides]
  return subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait_for(condition, process, timeout=180):
  deadline = time.monotonic() + timeout
  while not condition():
    assert process.poll() is None, f"exited with {process.returncode} before expected"
    assert time.monotonic() < deadline, "timed out"
    time.sleep(0.01)


def _final_state(workdir, config):
  run = experiment.prepare(config)
  checkpoints = Checkpoints(os.path.join(workdir, "checkpoints"), save_every_steps=1,
                            max_to_keep=None)
  try:
    return jax.device_get(checkpoints.restore_latest(run.abstract_state))
  finally:
    checkpoints.close()


def test_sigkill_then_restart_ends_like_an_uninterrupted_run(data_dir, compilation_cache,
                                                             tmp_path):
  workdir = str(tmp_path / "killed")
  overrides = (f"--config.train.num_steps={STEPS}", "--config.train.checkpoint_every_steps=10")
  process = _start(workdir, data_dir, compilation_cache, *overrides)
  checkpoints = pathlib.Path(workdir, "checkpoints")
  _wait_for(lambda: checkpoints.is_dir() and any(p.name.isdigit() for p in checkpoints.iterdir()),
            process)
  process.send_signal(signal.SIGKILL)
  assert process.wait(timeout=60) == -signal.SIGKILL
  killed_at = max(int(p.name) for p in checkpoints.iterdir() if p.name.isdigit())
  assert killed_at < STEPS and not pathlib.Path(workdir, "metrics.json").exists()

  restarted = _start(workdir, data_dir, compilation_cache, *overrides)
  assert restarted.wait(timeout=300) == 0, pathlib.Path(workdir + ".log").read_text()[-3000:]
  assert re.search(r"resuming from the checkpoint at step \d+",
                   pathlib.Path(workdir + ".log").read_text())

  config = train_testing.tiny_config(data_dir, num_steps=STEPS, checkpoint_every_steps=10)
  tokenizer_task.train_tokenizer(config, str(tmp_path / "uninterrupted"))
  resumed = _final_state(workdir, config)
  uninterrupted = _final_state(str(tmp_path / "uninterrupted"), config)
  assert int(resumed.step) == STEPS
  chex.assert_trees_all_equal(resumed, uninterrupted)


def test_sigterm_saves_the_current_step_and_exits_cleanly(data_dir, compilation_cache, tmp_path):
  workdir = str(tmp_path / "preempted")
  process = _start(workdir, data_dir, compilation_cache, "--config.train.num_steps=100000",
                   "--config.train.log_every_steps=5",
                   "--config.train.checkpoint_every_steps=100000")
  log = pathlib.Path(workdir + ".log")
  _wait_for(lambda: log.exists() and "step 5/100000" in log.read_text(), process)
  process.send_signal(signal.SIGTERM)
  assert process.wait(timeout=120) == 0, log.read_text()[-3000:]
  step = int(re.search(r"preempted \(SIGTERM\) at step (\d+)", log.read_text()).group(1))
  assert step >= 5
  saved = [int(p.name) for p in pathlib.Path(workdir, "checkpoints").iterdir() if p.name.isdigit()]
  assert saved == [step]
  assert not pathlib.Path(workdir, "metrics.json").exists()
