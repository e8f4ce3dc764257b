"""Token grids of a dataset split, encoded by a trained tokenizer and cached to disk.

    encode_split(workdir, split='train')       restores the workdir's latest checkpoint
                                               (as evaluate_workdir does), encodes the
                                               split and writes the cache
    load_token_grids(workdir, split='train')   reads the cache back, checking that it was
                                               made from the workdir's latest checkpoint
    select_grids(grids, tokens='bottom', condition='top')
                                               the grids one prior reads, renamed to its
                                               batch keys 'tokens' and 'condition'
    make_token_iterator(grids, batch_size=..)  batches for a prior, [devices, per-device, ...]

The cache is one .npz per split, <cache_dir>/<split>.npz (cache_dir defaults to
<workdir>/token_grids), holding
    tokens             int32 [N, h, w] for a VQ-VAE (residual/grouped: [N, h, w, levels])
    top, bottom        int32 [N, h/2, w/2] and [N, h, w] instead, for a VQ-VAE-2
    label              int32 [N], where the dataset has labels
    checkpoint_step    the step of the tokenizer checkpoint that encoded them
    split              the split it encodes, e.g. 'train' or 'train[:90%]'
in the split's stored order. A cache whose checkpoint_step is not the workdir's latest
checkpoint is stale: load_token_grids raises StaleCacheError, or with rebuild=True
encodes the split again.
"""
from __future__ import annotations

import math
import os
import re
from typing import Iterator, NamedTuple

from etils import epath
import jax
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from vqjax import data, models
from vqjax.data import sources
from vqjax.train import parallel
from vqjax.runner import experiment, loop
from vqjax.train.state import TrainState

CACHE_DIR = "token_grids"
_METADATA = ("checkpoint_step", "split")


class StaleCacheError(ValueError):
  """A token-grid cache made from another checkpoint than the workdir's latest."""


class TokenGrids(NamedTuple):
  grids: dict[str, np.ndarray]  # 'tokens', or 'top' and 'bottom': int32 [N, h, w, ...]
  labels: np.ndarray | None     # int32 [N], None where the dataset has no labels
  checkpoint_step: int          # the tokenizer checkpoint that encoded them
  split: str

  @property
  def num_examples(self) -> int:
    return len(next(iter(self.grids.values())))


def cache_path(workdir: str, split: str, cache_dir: str | None = None) -> str:
  """Where the token grids of split are cached: <cache_dir>/<split, sanitized>.npz."""
  directory = cache_dir or os.path.join(experiment.absolute_path(workdir), CACHE_DIR)
  return os.path.join(directory, re.sub(r"[^A-Za-z0-9_.-]+", "_", split) + ".npz")


def restore_tokenizer(workdir: str) -> tuple[experiment.Experiment, TrainState]:
  """The experiment saved in workdir (config.json) and its latest readable checkpoint."""
  return loop.restore_workdir(workdir)


def encode_split(workdir: str, *, split: str = "train", batch_size: int | None = None,
                 cache_dir: str | None = None) -> TokenGrids:
  """Encodes every example of split with the workdir's latest checkpoint, in stored order
  and without augmentation, writes the cache (see the module docstring) and returns it.

  batch_size: examples per encoding batch (default config.data.eval_batch_size).
  """
  if jax.process_count() > 1:
    raise ValueError(f"encode_split runs in one process, but there are {jax.process_count()}; "
                     "encode the token grids in a single-process job and share cache_dir")
  run, state = restore_tokenizer(workdir)
  data_config = run.config.data
  batches = data.make_eval_iterator(
      data_config.dataset, batch_size=batch_size or data_config.eval_batch_size, split=split,
      data_dir=data_config.data_dir, image_size=data_config.image_size,
      channels=run.config.model.image_channels, value_range=tuple(data_config.value_range))
  encode = jax.pmap(lambda variables, images: run.model.apply(variables, images,
                                                              method="encode"),
                    axis_name=parallel.AXIS_NAME, in_axes=(None, 0))
  names = ("top", "bottom") if isinstance(run.model, models.VQVAE2) else ("tokens",)
  parts: dict[str, list[np.ndarray]] = {name: [] for name in (*names, "label")}
  for batch in batches:
    valid = np.asarray(batch["mask"]).reshape(-1)
    grids = encode(state.variables, batch["image"])
    grids = grids if isinstance(grids, tuple) else (grids,)
    for name, grid in zip(names, jax.device_get(grids)):
      parts[name].append(_flat(grid)[valid].astype(np.int32))
    if "label" in batch:
      parts["label"].append(_flat(batch["label"])[valid].astype(np.int32))
  token_grids = TokenGrids(grids={name: np.concatenate(parts[name]) for name in names},
                           labels=np.concatenate(parts["label"]) if parts["label"] else None,
                           checkpoint_step=int(jax.device_get(state.step)), split=split)
  _write(cache_path(workdir, split, cache_dir), token_grids)
  return token_grids


def load_token_grids(workdir: str, *, split: str = "train", cache_dir: str | None = None,
                     rebuild: bool = False) -> TokenGrids:
  """The cached token grids of split, made from the workdir's latest checkpoint.

  A missing or stale cache (see the module docstring) is encoded anew with rebuild=True;
  otherwise it raises StaleCacheError (a ValueError) saying how to rebuild it.
  """
  path = cache_path(workdir, split, cache_dir)
  latest = latest_checkpoint_step(workdir)
  cached = _read(path) if os.path.exists(path) else None
  if cached is not None and cached.split == split and cached.checkpoint_step == latest:
    return cached
  if rebuild:
    return encode_split(workdir, split=split, cache_dir=cache_dir)
  fix = (f"call vqjax.tokens.encode_split({workdir!r}, split={split!r}) or pass rebuild=True")
  if cached is None:
    raise StaleCacheError(f"no token grids of split {split!r} are cached at {path}; {fix}")
  if cached.split != split:
    raise StaleCacheError(f"{path} holds split {cached.split!r}, not {split!r}; {fix}")
  raise StaleCacheError(
      f"the token grids in {path} were encoded with the checkpoint at step "
      f"{cached.checkpoint_step}, but the latest checkpoint in {workdir} is step {latest}; "
      f"{fix}")


def latest_checkpoint_step(workdir: str) -> int | None:
  """The step of the latest checkpoint in a train_and_evaluate workdir (None: none)."""
  workdir = experiment.absolute_path(workdir)
  checkpoints = loop.workdir_checkpoints(workdir, experiment.load_config(workdir))
  try:
    return checkpoints.latest_step()
  finally:
    checkpoints.close()


def select_grids(token_grids: TokenGrids, *, tokens: str,
                 condition: str | None = None) -> TokenGrids:
  """The grids one prior reads, under the names of its batches: the grid named `tokens`
  as 'tokens' and, for a VQ-VAE-2 bottom prior, the grid named `condition` (the top grid)
  as 'condition'; the others are dropped, the labels kept."""
  names = {"tokens": tokens} if condition is None else {"tokens": tokens,
                                                         "condition": condition}
  missing = sorted(set(names.values()) - set(token_grids.grids))
  if missing:
    raise ValueError(f"the token grids of split {token_grids.split!r} hold "
                     f"{sorted(token_grids.grids)}, not {missing}; a VQ-VAE-2 tokenizer has "
                     "'top' and 'bottom', any other tokenizer 'tokens'")
  return token_grids._replace(grids={name: token_grids.grids[grid]
                                     for name, grid in names.items()})


def make_token_iterator(token_grids: TokenGrids, *, batch_size: int, train: bool = True,
                        seed: int = 0, start_step: int = 0) -> Iterator[dict[str, np.ndarray]]:
  """Batches of token grids as numpy dicts [local devices, per-device batch, ...].

  Each batch holds the grids under their names ('tokens', or 'top' and 'bottom') and
  'label' int32 [D, B] where there are labels. train=True: shuffled with seed (the same
  order on every run), repeated forever, partial batches dropped, from batch start_step
  on. train=False: one pass in stored order, the last batch padded with zero grids whose
  'mask' is False (every batch then has a bool 'mask'). Each process reads its own slice.
  """
  layout = data.batch_layout(batch_size)
  arrays = dict(token_grids.grids)
  if token_grids.labels is not None:
    arrays["label"] = token_grids.labels
  process_count = jax.process_count()
  ds = tf.data.Dataset.from_tensor_slices(arrays).shard(process_count, jax.process_index())
  examples = token_grids.num_examples // process_count
  if train:
    if examples < layout.process_batch:
      raise ValueError(f"split {token_grids.split!r} has {examples} token grids per process, "
                       f"fewer than one per-process batch of {layout.process_batch}; use a "
                       "smaller batch size or a larger split")
    ds = ds.shuffle(examples, seed=seed, reshuffle_each_iteration=True).repeat()
    ds = ds.batch(layout.process_batch, drop_remainder=True).skip(start_step)
  else:
    num_batches = math.ceil(math.ceil(token_grids.num_examples / process_count)
                            / layout.process_batch)
    ds = ds.map(lambda example: {**example, "mask": tf.constant(True)})
    padding = tf.nest.map_structure(lambda spec: tf.zeros(spec.shape, spec.dtype),
                                    ds.element_spec)
    ds = ds.concatenate(tf.data.Dataset.from_tensors(padding).repeat())
    ds = ds.take(num_batches * layout.process_batch).batch(layout.process_batch)
  ds = ds.prefetch(tf.data.AUTOTUNE).with_options(sources.deterministic_options())
  return ({key: value.reshape((layout.local_devices, layout.per_device) + value.shape[1:])
           for key, value in batch.items()} for batch in tfds.as_numpy(ds))


def _flat(array: np.ndarray) -> np.ndarray:
  """[devices, per-device batch, ...] -> [devices * per-device batch, ...]."""
  return np.asarray(array).reshape(-1, *array.shape[2:])


def _write(path: str, token_grids: TokenGrids) -> None:
  """Writes the cache through a temporary file, so a killed run leaves no partial cache."""
  epath.Path(path).parent.mkdir(parents=True, exist_ok=True)
  arrays = dict(token_grids.grids, checkpoint_step=np.int64(token_grids.checkpoint_step),
                split=np.str_(token_grids.split))
  if token_grids.labels is not None:
    arrays["label"] = token_grids.labels
  temporary = path + ".tmp"
  with open(temporary, "wb") as f:
    np.savez(f, **arrays)
  os.replace(temporary, path)


def _read(path: str) -> TokenGrids:
  with np.load(path) as cache:
    arrays = {name: cache[name] for name in cache.files}
  labels = arrays.pop("label", None)
  return TokenGrids(grids={name: value for name, value in arrays.items()
                           if name not in _METADATA},
                    labels=labels, checkpoint_step=int(arrays["checkpoint_step"]),
                    split=str(arrays["split"]))
