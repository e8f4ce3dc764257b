"""A restart with another config that changes the state's structure is refused before
anything in the workdir changes; the right command then resumes from the original steps."""
import hashlib
import os

import pytest

import train_testing
from vqjax.runner import tokenizer_task
from vqjax.train.checkpoints import CheckpointMismatchError


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
  with pytest.raises(CheckpointMismatchError, match="new --workdir"):
    tokenizer_task.train_tokenizer(mistyped, workdir)
  after = {name: digest for name, digest in _tree_hashes(workdir).items()
           if not name.startswith("tensorboard")}
  assert after == before

  config.train.num_steps = 2  # the right command, asking for one more step, resumes
  assert tokenizer_task.train_tokenizer(config, workdir)["step"] == 2
