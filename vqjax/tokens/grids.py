"""Token grids for the priors: a dataset split encoded by a tokenizer, cached to disk with
the checkpoint step that made it, and read back in batches.

Below the runner: it takes an encode function and batches, and knows nothing of
workdirs, configs or training.

    encode_grids(encode, batches, names=, checkpoint_step=, split=)
        encodes every valid example of batches (vqjax.data's [devices, per-device, ...]
        layout, with 'mask') with encode(images) -> grid or tuple of grids
    save_token_grids(path, grids) / read_token_grids(path)
        the cache file, written atomically; read_token_grids returns None, saying why,
        for a file that is missing or damaged
    select_grids(grids, tokens='bottom', condition='top')
        the grids one prior reads, renamed to its batch keys 'tokens' and 'condition'
    make_token_iterator(grids, batch_size=..)
        batches for a prior, [devices, per-device, ...]

A cache file (.npz) holds
    tokens             int32 [N, h, w] for a VQ-VAE (residual/grouped: [N, h, w, levels])
    top, bottom        int32 [N, h/2, w/2] and [N, h, w] instead, for a VQ-VAE-2
    label              int32 [N], where the dataset has labels
    checkpoint_step    the step of the tokenizer checkpoint that encoded them
    split              the split it encodes, e.g. 'train' or 'train[:90%]'
    image_shape        the encoded images' (H, W, C)
in the split's stored order.
"""
from __future__ import annotations

import math
import os
import re
import zipfile
from typing import Callable, Iterable, Iterator, NamedTuple, Sequence

from absl import logging
from etils import epath
import jax
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from vqjax import data
from vqjax.data import sources

_METADATA = ("checkpoint_step", "split", "image_shape")


class TokenGrids(NamedTuple):
  grids: dict[str, np.ndarray]  # 'tokens', or 'top' and 'bottom': int32 [N, h, w, ...]
  labels: np.ndarray | None     # int32 [N], None where the dataset has no labels
  checkpoint_step: int          # the tokenizer checkpoint that encoded them
  split: str
  image_shape: tuple[int, int, int] | None = None  # of the encoded images

  @property
  def num_examples(self) -> int:
    return len(next(iter(self.grids.values())))


def cache_file_name(split: str) -> str:
  """<split, sanitized>.npz: the cache file of a split."""
  return re.sub(r"[^A-Za-z0-9_.-]+", "_", split) + ".npz"


def encode_grids(encode: Callable, batches: Iterable[dict], *, names: Sequence[str],
                 checkpoint_step: int, split: str) -> TokenGrids:
  """The token grids of every valid example of batches, in their order.

  encode(images [devices, per-device batch, H, W, C]) -> one grid, or a tuple of grids
  named by names (('tokens',), or ('top', 'bottom') for a VQ-VAE-2), laid out like the
  images (vqjax.train.parallel.encode_step gives one).
  """
  if jax.process_count() > 1:
    raise ValueError(f"token grids are encoded in one process, but there are "
                     f"{jax.process_count()}; encode them in a single-process job first")
  parts: dict[str, list[np.ndarray]] = {name: [] for name in (*names, "label")}
  image_shape = None
  for batch in batches:
    valid = np.asarray(batch["mask"]).reshape(-1)
    image_shape = tuple(int(side) for side in batch["image"].shape[2:])
    grids = encode(batch["image"])
    grids = grids if isinstance(grids, tuple) else (grids,)
    for name, grid in zip(names, jax.device_get(grids)):
      parts[name].append(_flat(grid)[valid].astype(np.int32))
    if "label" in batch:
      parts["label"].append(_flat(batch["label"])[valid].astype(np.int32))
  if image_shape is None:
    raise ValueError(f"split {split!r} yielded no examples to encode; pick a split with "
                     "examples")
  return TokenGrids(grids={name: np.concatenate(parts[name]) for name in names},
                    labels=np.concatenate(parts["label"]) if parts["label"] else None,
                    checkpoint_step=int(checkpoint_step), split=split,
                    image_shape=image_shape)


def save_token_grids(path: str, token_grids: TokenGrids) -> None:
  """Writes the cache through a temporary file, so a killed run leaves no partial cache."""
  epath.Path(path).parent.mkdir(parents=True, exist_ok=True)
  arrays = dict(token_grids.grids, checkpoint_step=np.int64(token_grids.checkpoint_step),
                split=np.str_(token_grids.split))
  if token_grids.image_shape is not None:
    arrays["image_shape"] = np.asarray(token_grids.image_shape, np.int64)
  if token_grids.labels is not None:
    arrays["label"] = token_grids.labels
  temporary = path + ".tmp"
  with open(temporary, "wb") as f:
    np.savez(f, **arrays)
  os.replace(temporary, path)


def read_token_grids(path: str) -> TokenGrids | None:
  """The cache at path; None where there is none or it cannot be read (damaged: logged
  with the reason, and left for the caller to encode anew)."""
  if not os.path.exists(path):
    return None
  try:
    with np.load(path) as cache:
      arrays = {name: cache[name] for name in cache.files}
    labels = arrays.pop("label", None)
    image_shape = arrays.get("image_shape")
    return TokenGrids(grids={name: value for name, value in arrays.items()
                             if name not in _METADATA},
                      labels=labels, checkpoint_step=int(arrays["checkpoint_step"]),
                      split=str(arrays["split"]),
                      image_shape=None if image_shape is None else tuple(
                          int(side) for side in image_shape))
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
    logging.warning("the token-grid cache %s cannot be read (%s: %s); treating it as stale",
                    path, type(error).__name__, error)
    return None


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
