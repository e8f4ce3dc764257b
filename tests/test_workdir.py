"""vqjax/runner/workdir.py: config.json errors name the fix; evaluations and samples get
new names, never an earlier one's."""
import os

import pytest

from vqjax.runner import workdir as workdir_lib


def test_a_damaged_config_names_the_fix(tmp_path):
  (tmp_path / "config.json").write_text('{"train": ')
  with pytest.raises(ValueError, match="config.json is not a readable config .*restore it"):
    workdir_lib.load_config(str(tmp_path))


def test_an_empty_workdir_flag_names_the_fix():
  with pytest.raises(ValueError, match=r"no workdir was given \(--workdir is empty\)"):
    workdir_lib.load_config("")
  with pytest.raises(ValueError, match=r"no workdir was given \(--workdir is empty\)"):
    workdir_lib.check_training_workdir("")


def test_evaluation_directories_never_repeat(tmp_path):
  first = workdir_lib.new_evaluation_dir(str(tmp_path), 7)
  second = workdir_lib.new_evaluation_dir(str(tmp_path), 7)
  assert first == str(tmp_path / "evaluations" / "step_7")
  assert second == str(tmp_path / "evaluations" / "step_7-1")
  assert os.path.isdir(first) and os.path.isdir(second)


def test_samples_paths_never_repeat_nor_take_the_training_runs(tmp_path):
  paths = {workdir_lib.new_samples_path(str(tmp_path)) for _ in range(3)}
  assert len(paths) == 3 and all(os.path.exists(p) for p in paths)
  assert all(os.path.basename(p).startswith("samples_") for p in paths)
  assert str(tmp_path / "samples.png") not in paths
