"""Feature statistics of a dataset split, cached on disk.

A split's statistics depend on the dataset, the split, the image size the images are fed
at, the resizing convention, how many images were used and the Inception weights, so all of
these key the cache file (statistics_cache_path); a file whose stored key differs from the
one asked for is recomputed, never reused.

    stats = cached_statistics(cache_dir, lambda: evaluator.statistics(batches),
                              dataset="cifar10", split="test", image_size=32,
                              weights_sha1=evaluator.weights_sha1)
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Callable

import numpy as np

from vqjax.metrics.statistics import FeatureStatistics


def statistics_key(*, dataset: str, split: str, image_size, weights_sha1: str,
                   resize: str = "tf1", num_images: int | None = None) -> dict:
  """The fields that identify a split's statistics (image_size: an int or (height, width))."""
  size = (image_size, image_size) if isinstance(image_size, (int, np.integer)) else image_size
  if len(tuple(size)) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0
                                      for s in size):
    raise ValueError(f"image_size is {image_size!r}; pass an int or (height, width), e.g. 32")
  for name, value in (("dataset", dataset), ("split", split), ("weights_sha1", weights_sha1),
                      ("resize", resize)):
    if not isinstance(value, str) or not value:
      raise ValueError(f"{name} is {value!r}; it must be a non-empty string")
  return {"dataset": dataset, "split": split, "image_size": [int(s) for s in size],
          "resize": resize, "num_images": num_images, "weights_sha1": weights_sha1}


def statistics_cache_path(cache_dir: str, **key_fields) -> str:
  """cache_dir/<dataset>-<split>-<H>x<W>-<resize>-<n>-<hash of the whole key>.npz."""
  key = statistics_key(**key_fields)
  digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
  readable = "-".join([key["dataset"], key["split"], "x".join(map(str, key["image_size"])),
                       key["resize"], str(key["num_images"] or "all")])
  return os.path.join(os.fspath(cache_dir), re.sub(r"[^A-Za-z0-9_.x-]", "_", readable)
                      + f"-{digest}.npz")


def save_statistics(path: str, stats: FeatureStatistics, key: dict | None = None) -> None:
  """Writes stats (and the key they belong to) to an .npz, atomically."""
  path = os.fspath(path)
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  temporary = f"{path}.tmp-{os.getpid()}.npz"
  np.savez(temporary, count=np.int64(stats.count), mean=stats.mean, scatter=stats.scatter,
           key=np.asarray(json.dumps(key or {}, sort_keys=True)))
  os.replace(temporary, path)


def load_statistics(path: str) -> tuple[FeatureStatistics, dict]:
  """(stats, key) from an .npz written by save_statistics."""
  with np.load(os.fspath(path), allow_pickle=False) as npz:
    missing = {"count", "mean", "scatter", "key"} - set(npz.files)
    if missing:
      raise ValueError(f"{path} lacks {sorted(missing)}; it was not written by "
                       "save_statistics: delete it and recompute")
    stats = FeatureStatistics(int(npz["count"]), npz["mean"].astype(np.float64),
                              npz["scatter"].astype(np.float64))
    return stats, json.loads(str(npz["key"]))


def cached_statistics(cache_dir: str, compute: Callable[[], FeatureStatistics],
                      **key_fields) -> FeatureStatistics:
  """The split's statistics from cache_dir if cached under the same key, else compute()
  (then saved). key_fields: dataset, split, image_size, weights_sha1, resize, num_images."""
  key = statistics_key(**key_fields)
  path = statistics_cache_path(cache_dir, **key_fields)
  if os.path.exists(path):
    stats, stored = load_statistics(path)
    if stored == key:
      return stats
  stats = compute()
  if not isinstance(stats, FeatureStatistics):
    raise ValueError(f"compute returned {type(stats).__name__}, not FeatureStatistics")
  save_statistics(path, stats, key)
  return stats
