"""A restart with another config is refused before anything in the workdir changes
(vqjax.runner.config_drift): changes of structure or meaning always, safe changes without
--config.train.allow_config_change=true; the right command then resumes."""
import copy
import hashlib
import os

import ml_collections
import pytest

import train_testing
from vqjax.runner import config_drift, tokenizer_task
from vqjax.runner.config_drift import ConfigChangeError


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return train_testing.prepare_digits(str(tmp_path_factory.mktemp("tfds")))


def _tree_hashes(root):
  hashes = {}
  for folder, _, files in os.walk(root):
    for name in files:
      path = os.path.join(folder, name)
      with open(path, "rb") as f:
        hashes[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
  return hashes


def test_a_structure_change_is_refused_and_leaves_the_workdir_byte_identical(data_dir,
                                                                              tmp_path):
  workdir = str(tmp_path / "run")
  config = train_testing.tiny_config(data_dir, num_steps=1, log_every_steps=1,
                                     checkpoint_every_steps=1)
  config.data.eval_split = "test[:32]"
  tokenizer_task.train_tokenizer(config, workdir)
  before = {name: digest for name, digest in _tree_hashes(workdir).items()
            if not name.startswith("tensorboard")}

  mistyped = train_testing.tiny_config(data_dir, num_steps=2, log_every_steps=1,
                                       checkpoint_every_steps=1)
  mistyped.data.eval_split = "test[:32]"
  mistyped.model.quantizer.codebook_size = 2 * config.model.quantizer.codebook_size
  with pytest.raises(ConfigChangeError, match=r"(?s)model.quantizer.codebook_size.*new --workdir"):
    tokenizer_task.train_tokenizer(mistyped, workdir)
  after = {name: digest for name, digest in _tree_hashes(workdir).items()
           if not name.startswith("tensorboard")}
  assert after == before

  assert tokenizer_task.train_tokenizer(config, workdir)["step"] == 1  # the right command


def test_safe_changes_need_the_flag_and_other_changes_are_refused_even_with_it(data_dir,
                                                                               tmp_path):
  workdir = str(tmp_path / "run")
  config = train_testing.tiny_config(data_dir, num_steps=1, log_every_steps=1,
                                     checkpoint_every_steps=1)
  config.data.eval_split = "test[:32]"
  tokenizer_task.train_tokenizer(config, workdir)
  before = _tree_hashes(workdir)

  longer = copy.deepcopy(config)
  longer.train.num_steps = 2
  longer.optimizer.learning_rate = 2e-3
  with pytest.raises(ConfigChangeError, match=r"(?s)optimizer.learning_rate.*train.num_steps: "
                     r"1 -> 2.*--config.train.allow_config_change=true"):
    tokenizer_task.train_tokenizer(longer, workdir)
  reseeded = copy.deepcopy(longer)
  reseeded.seed = 7
  reseeded.train.allow_config_change = True
  with pytest.raises(ConfigChangeError, match=r"(?s)seed: 0 -> 7.*new --workdir"):
    tokenizer_task.train_tokenizer(reseeded, workdir)
  assert _tree_hashes(workdir) == before

  longer.train.allow_config_change = True
  assert tokenizer_task.train_tokenizer(longer, workdir)["step"] == 2
  assert (tmp_path / "run" / "config.1.json").exists()  # the replaced config is kept


def test_differences_compare_lists_and_tuples_alike():
  assert config_drift.differences({"a": {"b": (1, 2)}}, {"a": {"b": [1, 2]}}) == []
  assert config_drift.differences({"a": 1}, {"a": 1, "c": 2}) == [("c", None, 2)]
  assert config_drift.is_safe("train.num_steps") and not config_drift.is_safe("seed")
  saved = ml_collections.ConfigDict({"distributed": {"process_id": 0}, "train": {}})
  config_drift.check_resume(saved, ml_collections.ConfigDict(
      {"distributed": {"process_id": 1}, "train": {}}), workdir="w")  # each pod process
