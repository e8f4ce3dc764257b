"""Token grids: encoded with a tokenizer trained a step on the digits, cached with the
checkpoint step, equal to model.encode, labels kept, stale or damaged caches encoded anew,
a fresh cache read without the dataset, batched."""
import os
import shutil

import jax
import numpy as np
import pytest

import train_testing
from vqjax import data
from vqjax.runner import build, experiment, token_cache, tokenizer_task, workdir as workdir_lib
from vqjax.train.checkpoints import Checkpoints
from vqjax import tokens

SPLIT = "test[:50]"  # 50 is not a multiple of the eval batch: exercises the padding mask


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return train_testing.prepare_digits(str(tmp_path_factory.mktemp("tfds")))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, data_dir):
  config = train_testing.tiny_config(data_dir, num_steps=1, log_every_steps=1,
                                     checkpoint_every_steps=1, keep_checkpoints=None)
  config.model.name = "vqvae2"
  config.data.eval_split = "test[:100]"  # keeps the final evaluation short (two batches)
  workdir = str(tmp_path_factory.mktemp("tokenizer"))
  tokenizer_task.train_tokenizer(config, workdir)
  return workdir


def _expected(workdir):
  """model.encode of the split's images, and its labels, on one device."""
  run, state = tokenizer_task.restore_workdir(workdir)
  model = build.build_model(run.config.model, axis_name=None)
  data_config = run.config.data
  batches = data.make_eval_iterator(
      data_config.dataset, batch_size=64, split=SPLIT, data_dir=data_config.data_dir,
      image_size=data_config.image_size, channels=1, value_range=tuple(data_config.value_range))
  batch = next(batches)
  valid = batch["mask"].reshape(-1)
  images = batch["image"].reshape(-1, *batch["image"].shape[2:])[valid]
  grids = model.apply(jax.device_get(state.variables), images, method="encode")
  names = ("top", "bottom") if isinstance(grids, tuple) else ("tokens",)
  grids = grids if isinstance(grids, tuple) else (grids,)
  return ({name: np.asarray(grid) for name, grid in zip(names, grids)},
          batch["label"].reshape(-1)[valid])


def _copy(workdir, tmp_path):
  return str(shutil.copytree(workdir, tmp_path / "tokenizer"))  # others keep their cache


def test_cache_round_trip_equals_model_encode(workdir, tmp_path):
  workdir = _copy(workdir, tmp_path)
  encoded = token_cache.restore_with_grids(workdir, [SPLIT]).grids[SPLIT]
  assert os.path.exists(token_cache.cache_path(workdir, SPLIT))
  loaded = tokens.read_token_grids(token_cache.cache_path(workdir, SPLIT))
  expected, labels = _expected(workdir)

  assert loaded.checkpoint_step == encoded.checkpoint_step == 1 and loaded.split == SPLIT
  assert loaded.image_shape == (8, 8, 1)
  assert set(loaded.grids) == {"top", "bottom"} and loaded.num_examples == 50
  assert loaded.grids["top"].shape == (50, 2, 2) and loaded.grids["bottom"].shape == (50, 4, 4)
  for name in ("top", "bottom"):
    assert loaded.grids[name].dtype == np.int32
    np.testing.assert_array_equal(loaded.grids[name], expected[name])
    np.testing.assert_array_equal(encoded.grids[name], expected[name])
  np.testing.assert_array_equal(loaded.labels, labels)
  assert loaded.labels.dtype == np.int32


def test_a_fresh_cache_needs_no_dataset_and_one_restore(workdir, tmp_path, monkeypatch):
  workdir = _copy(workdir, tmp_path)
  first = token_cache.restore_with_grids(workdir, [SPLIT])
  config = workdir_lib.load_config(workdir)
  config.data.data_dir = str(tmp_path / "no_dataset_here")
  (tmp_path / "tokenizer" / "config.json").write_text(config.to_json())
  restores = []
  restore_latest = workdir_lib.restore_latest
  monkeypatch.setattr(workdir_lib, "restore_latest",
                      lambda *args: restores.append(1) or restore_latest(*args))
  again = token_cache.restore_with_grids(workdir, [SPLIT, SPLIT])
  assert restores == [1]
  for name in ("top", "bottom"):
    np.testing.assert_array_equal(again.grids[SPLIT].grids[name], first.grids[SPLIT].grids[name])
  assert again.run.info.image_shape == (8, 8, 1)


def test_a_garbage_cache_is_encoded_anew(workdir, tmp_path):
  workdir = _copy(workdir, tmp_path)
  path = token_cache.cache_path(workdir, SPLIT)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "wb") as f:
    f.write(b"not a zip file" * 10)
  assert tokens.read_token_grids(path) is None
  grids = token_cache.restore_with_grids(workdir, [SPLIT]).grids[SPLIT]
  assert grids.num_examples == 50
  assert tokens.read_token_grids(path).checkpoint_step == 1


def test_cache_from_an_older_checkpoint_is_encoded_anew(workdir, tmp_path):
  workdir = _copy(workdir, tmp_path)
  token_cache.restore_with_grids(workdir, [SPLIT])
  # A newer checkpoint appears, as when training goes on.
  run, state = tokenizer_task.restore_workdir(workdir)
  checkpoints = Checkpoints(os.path.join(workdir, "checkpoints"), save_every_steps=1,
                            max_to_keep=None)
  try:
    checkpoints.save(state.replace(step=state.step + 1))
    checkpoints.wait()
  finally:
    checkpoints.close()
  del run
  rebuilt = token_cache.restore_with_grids(workdir, [SPLIT]).grids[SPLIT]
  assert rebuilt.checkpoint_step == 2
  assert tokens.read_token_grids(token_cache.cache_path(workdir, SPLIT)).checkpoint_step == 2


def test_a_vqvae_gives_one_grid_named_tokens(data_dir, tmp_path):
  # An untrained tokenizer's checkpoint at step 0 is enough here (no train step compiles).
  run = experiment.prepare(train_testing.tiny_config(data_dir))
  workdir = str(tmp_path / "tokenizer")
  os.makedirs(workdir)
  workdir_lib.save_config(run.config, workdir)
  checkpoints = Checkpoints(os.path.join(workdir, "checkpoints"), save_every_steps=1,
                            max_to_keep=None)
  try:
    checkpoints.save(run.init())
    checkpoints.wait()
  finally:
    checkpoints.close()
  encoded = token_cache.restore_with_grids(workdir, [SPLIT]).grids[SPLIT]
  assert os.path.exists(os.path.join(workdir, token_cache.CACHE_DIR, "test_50_.npz"))
  loaded = tokens.read_token_grids(token_cache.cache_path(workdir, SPLIT))
  expected, labels = _expected(workdir)
  assert loaded.checkpoint_step == encoded.checkpoint_step == 0
  assert set(loaded.grids) == {"tokens"} and loaded.grids["tokens"].shape == (50, 4, 4)
  np.testing.assert_array_equal(loaded.grids["tokens"], expected["tokens"])
  np.testing.assert_array_equal(loaded.labels, labels)


def _grids(n=10):
  rng = np.random.default_rng(0)
  return tokens.TokenGrids(grids={"tokens": rng.integers(0, 32, (n, 4, 4), np.int32)},
                           labels=np.arange(n, dtype=np.int32), checkpoint_step=3,
                           split="train")


def test_train_batches_are_per_device_shuffled_and_reproducible():
  devices = jax.local_device_count()
  first = next(tokens.make_token_iterator(_grids(), batch_size=8, seed=1))
  again = next(tokens.make_token_iterator(_grids(), batch_size=8, seed=1))
  assert first["tokens"].shape == (devices, 8 // devices, 4, 4)
  assert first["label"].shape == (devices, 8 // devices)
  for key in first:
    np.testing.assert_array_equal(first[key], again[key])
  labels = first["label"].reshape(-1)
  np.testing.assert_array_equal(first["tokens"].reshape(-1, 4, 4), _grids().grids["tokens"][labels])
  later = tokens.make_token_iterator(_grids(), batch_size=8, seed=1)
  third = [next(later) for _ in range(3)][-1]
  resumed = next(tokens.make_token_iterator(_grids(), batch_size=8, seed=1, start_step=2))
  np.testing.assert_array_equal(third["label"], resumed["label"])


def test_eval_batches_cover_every_grid_once_with_a_mask():
  batches = list(tokens.make_token_iterator(_grids(), batch_size=8, train=False))
  assert len(batches) == 2
  mask = np.concatenate([b["mask"].reshape(-1) for b in batches])
  labels = np.concatenate([b["label"].reshape(-1) for b in batches])
  assert mask.sum() == 10
  np.testing.assert_array_equal(labels[mask], np.arange(10))
