"""2 processes x 2 CPU devices, joined by jax.distributed with gloo collectives, train as
1 process x 4 devices does on the same global batches: the real loop (k-means init, the
pmapped steps, evaluation) in subprocesses running multiprocess_worker.py, the pair
writing its orbax checkpoints into one shared workdir and resuming from one after a
simulated preemption."""
import json
import os
import socket
import subprocess
import sys
import time

import chex
import jax
import numpy as np
import pytest

import train_testing
from vqjax.runner import experiment
from vqjax.train.checkpoints import Checkpoints

TESTS = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(TESTS, "multiprocess_worker.py")
TIMEOUT_S = 180  # about 40 s on 2 idle cores; the margin is for a busy machine


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return train_testing.prepare_digits(str(tmp_path_factory.mktemp("tfds")))


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _run_workers(tmp_path, runs):
  """Runs {name: worker arguments} at once; returns {name: the worker's output}."""
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      [os.path.dirname(TESTS), TESTS, os.environ.get("PYTHONPATH", "")]))
  procs, logs = {}, {}
  try:
    for name, args in runs.items():
      logs[name] = open(tmp_path / f"{name}.log", "wb")
      procs[name] = subprocess.Popen(
          [sys.executable, WORKER, *map(str, (*args[:6], tmp_path / f"{name}.json", args[6]))],
          cwd=os.path.dirname(TESTS), env=env, stdout=logs[name], stderr=subprocess.STDOUT)
    deadline = time.monotonic() + TIMEOUT_S
    while any(p.poll() is None for p in procs.values()) and time.monotonic() < deadline:
      if any(p.poll() for p in procs.values()):
        break  # one failed: the others would wait for it until their own timeouts
      time.sleep(0.2)
  finally:
    for proc in procs.values():
      if proc.poll() is None:
        proc.kill()
      proc.wait()
    for log in logs.values():
      log.close()
  failed = {name: proc.returncode for name, proc in procs.items() if proc.returncode}
  if failed:
    tails = "\n".join(f"--- {name} (exit {code}):\n"
                      + (tmp_path / f"{name}.log").read_text(errors="replace")[-3000:]
                      for name, code in failed.items())
    pytest.fail(f"workers failed or ran past {TIMEOUT_S} s: {failed}\n{tails}")
  return {name: json.loads((tmp_path / f"{name}.json").read_text()) for name in runs}


def _restore_steps(config, workdir):
  checkpoints = Checkpoints(os.path.join(workdir, "checkpoints"), save_every_steps=1,
                            max_to_keep=None)
  try:
    return checkpoints.all_steps(), checkpoints.restore_latest(
        experiment.prepare(config).abstract_state)
  finally:
    checkpoints.close()


def test_two_processes_train_like_one(data_dir, tmp_path):
  port = _free_port()
  shared, single = tmp_path / "shared_workdir", tmp_path / "single_workdir"
  # process_id, num_processes, local devices, port, data_dir, workdir, preempt at step
  outputs = _run_workers(tmp_path, {
      "process0": (0, 2, 2, port, data_dir, shared, 2),
      "process1": (1, 2, 2, port, data_dir, shared, 2),
      "single": (0, 1, 4, 0, data_dir, single, 0),
  })
  pair, reference = [outputs["process0"], outputs["process1"]], outputs["single"]
  assert [(o["process_count"], o["device_count"], o["preempted"]) for o in pair] == [
      (2, 4, True)] * 2
  assert (reference["process_count"], reference["device_count"]) == (1, 4)
  assert not reference["preempted"]
  assert pair[0]["losses"] == pair[1]["losses"]  # pmean'd: one value on every process
  steps = sorted(reference["losses"], key=int)
  assert steps == ["1", "2", "3", "4"] and sorted(pair[0]["losses"], key=int) == steps
  np.testing.assert_allclose([pair[0]["losses"][s] for s in steps],
                             [reference["losses"][s] for s in steps], rtol=1e-5)
  for name, value in reference["metrics"].items():
    np.testing.assert_allclose(pair[0]["metrics"][name], value, rtol=1e-5, err_msg=name)

  # The pair's checkpoint (every process saved into the shared workdir) restores in one.
  config = train_testing.tiny_config(data_dir)
  shared_steps, shared_state = _restore_steps(config, str(shared))
  single_steps, single_state = _restore_steps(config, str(single))
  assert shared_steps == [2, 4] and single_steps == [4]
  chex.assert_trees_all_close(jax.device_get(shared_state), jax.device_get(single_state),
                              atol=1e-5, rtol=1e-5)
