"""SIGTERM from the first line of a run to the last: during start-up nothing changes and
the run returns None; during the final save the save finishes and a restart evaluates."""
import os
import signal

import pytest

import train_testing
from vqjax.runner import experiment, tokenizer_task
from vqjax.train import checkpoints as checkpoints_lib


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return train_testing.prepare_digits(str(tmp_path_factory.mktemp("tfds")))


def _config(data_dir):
  config = train_testing.tiny_config(data_dir, num_steps=2, log_every_steps=1,
                                     checkpoint_every_steps=2)
  config.data.eval_split = "test[:32]"
  return config


def test_sigterm_during_start_up_returns_before_anything_is_written(data_dir, tmp_path,
                                                                     monkeypatch):
  prepare = experiment.prepare

  def preempted_prepare(config, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler would, while data is read
    return prepare(config, **kwargs)

  monkeypatch.setattr(experiment, "prepare", preempted_prepare)
  workdir = tmp_path / "run"
  assert tokenizer_task.train_tokenizer(_config(data_dir), str(workdir)) is None
  assert not (workdir / "config.json").exists()
  assert not list((workdir / "checkpoints").glob("*"))
  monkeypatch.setattr(experiment, "prepare", prepare)
  assert tokenizer_task.train_tokenizer(_config(data_dir), str(workdir))["step"] == 2


def test_sigterm_during_the_final_save_finishes_it_and_a_restart_evaluates(data_dir, tmp_path,
                                                                           monkeypatch):
  save = checkpoints_lib.Checkpoints.save
  saved = []

  def save_then_preempt(self, state):
    result = save(self, state)
    saved.append(int(state.step))
    if len(saved) == 2:  # the final save at step 2 (the interval's save came first)
      os.kill(os.getpid(), signal.SIGTERM)
    return result

  monkeypatch.setattr(checkpoints_lib.Checkpoints, "save", save_then_preempt)
  workdir = tmp_path / "run"
  assert tokenizer_task.train_tokenizer(_config(data_dir), str(workdir)) is None
  assert saved == [2, 2] and not (workdir / "metrics.json").exists()
  assert not list((workdir / "checkpoints").glob("*tmp*"))
  assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == ["2"]
  monkeypatch.setattr(checkpoints_lib.Checkpoints, "save", save)
  assert tokenizer_task.train_tokenizer(_config(data_dir), str(workdir))["step"] == 2
  assert (workdir / "metrics.json").exists()
