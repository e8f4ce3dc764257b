"""Token grids: encoded with a tokenizer trained a step on the digits, cached with the
checkpoint step, equal to model.encode, labels kept, stale caches caught, batched."""
import os
import shutil

import jax
import numpy as np
import pytest

import train_testing
from vqjax import data
from vqjax.runner import build, experiment, loop
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
  loop.train_and_evaluate(config, workdir)
  return workdir


def _expected(workdir):
  """model.encode of the split's images, and its labels, on one device."""
  run, state = tokens.restore_tokenizer(workdir)
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


def test_cache_round_trip_equals_model_encode(workdir, tmp_path):
  cache_dir = str(tmp_path / "cache")
  encoded = tokens.encode_split(workdir, split=SPLIT, cache_dir=cache_dir)
  assert os.path.exists(tokens.cache_path(workdir, SPLIT, cache_dir))
  loaded = tokens.load_token_grids(workdir, split=SPLIT, cache_dir=cache_dir)
  expected, labels = _expected(workdir)

  assert loaded.checkpoint_step == encoded.checkpoint_step == 1 and loaded.split == SPLIT
  assert set(loaded.grids) == {"top", "bottom"} and loaded.num_examples == 50
  assert loaded.grids["top"].shape == (50, 2, 2) and loaded.grids["bottom"].shape == (50, 4, 4)
  for name in ("top", "bottom"):
    assert loaded.grids[name].dtype == np.int32
    np.testing.assert_array_equal(loaded.grids[name], expected[name])
    np.testing.assert_array_equal(encoded.grids[name], expected[name])
  np.testing.assert_array_equal(loaded.labels, labels)
  assert loaded.labels.dtype == np.int32


def test_cache_from_an_older_checkpoint_is_stale(workdir, tmp_path):
  workdir = str(shutil.copytree(workdir, tmp_path / "tokenizer"))  # others keep step 1
  cache_dir = str(tmp_path / "cache")
  with pytest.raises(tokens.StaleCacheError, match="no token grids"):
    tokens.load_token_grids(workdir, split=SPLIT, cache_dir=cache_dir)
  tokens.encode_split(workdir, split=SPLIT, cache_dir=cache_dir)
  # A newer checkpoint appears, as when training goes on.
  run, state = tokens.restore_tokenizer(workdir)
  checkpoints = Checkpoints(os.path.join(workdir, "checkpoints"), save_every_steps=1,
                            max_to_keep=None)
  try:
    checkpoints.save(state.replace(step=state.step + 1))
    checkpoints.wait()
  finally:
    checkpoints.close()
  del run
  with pytest.raises(tokens.StaleCacheError, match="step 1, but the latest checkpoint .* step 2"):
    tokens.load_token_grids(workdir, split=SPLIT, cache_dir=cache_dir)
  rebuilt = tokens.load_token_grids(workdir, split=SPLIT, cache_dir=cache_dir, rebuild=True)
  assert rebuilt.checkpoint_step == 2
  assert tokens.load_token_grids(workdir, split=SPLIT, cache_dir=cache_dir).checkpoint_step == 2


def test_a_vqvae_gives_one_grid_named_tokens(data_dir, tmp_path):
  # An untrained tokenizer's checkpoint at step 0 is enough here (no train step compiles).
  run = experiment.prepare(train_testing.tiny_config(data_dir))
  workdir = str(tmp_path / "tokenizer")
  os.makedirs(workdir)
  experiment.save_config(run.config, workdir)
  checkpoints = Checkpoints(os.path.join(workdir, "checkpoints"), save_every_steps=1,
                            max_to_keep=None)
  try:
    checkpoints.save(run.init())
    checkpoints.wait()
  finally:
    checkpoints.close()
  encoded = tokens.encode_split(workdir, split=SPLIT)
  assert os.path.exists(os.path.join(workdir, tokens.grids.CACHE_DIR, "test_50_.npz"))
  loaded = tokens.load_token_grids(workdir, split=SPLIT)
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
