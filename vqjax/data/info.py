"""What a trainer needs to know about a dataset: shapes, sizes, classes and data variance.

The data variance normalizes the reconstruction loss (normalized MSE = MSE / variance).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from vqjax.data import preprocess
from vqjax.data import sources


class DatasetInfo(NamedTuple):
  name: str
  image_shape: tuple[int, int, int]  # of pipeline images: (height, width, channels)
  channels: int
  num_classes: int | None  # None when the dataset has no class labels
  num_examples: dict[str, int]  # per split


def dataset_info(dataset, *, data_dir: str | None = None, download: bool = False,
                 image_size: int | None = None) -> DatasetInfo:
  """Describes `dataset` (a TFDS name or DatasetBuilder) as the pipelines will yield it."""
  builder = sources.get_builder(dataset, data_dir=data_dir, download=download)
  first_split = next(iter(builder.info.splits.keys()), None)
  if first_split is None:
    raise ValueError(f"dataset {builder.name!r} has no splits; prepare it again")
  source = sources.open_source(builder, split=first_split)
  shape = preprocess.output_shape(source.image_shape, image_size, source.name)
  return DatasetInfo(
      name=source.name, image_shape=shape, channels=shape[-1],
      num_classes=source.num_classes,
      num_examples={name: split.num_examples for name, split in builder.info.splits.items()})


def data_variance(dataset, *, data_dir: str | None = None, download: bool = False,
                  split: str = "train", image_size: int | None = None,
                  value_range=(-1.0, 1.0), max_examples: int | None = None) -> float:
  """The variance of all pixel values of `split` as the pipelines yield them (no augmentation).

  Reads the first `max_examples` examples in stored order (all when None), in this process
  alone, so every process computes the same number.
  """
  if max_examples is not None and (not isinstance(max_examples, int) or max_examples < 1):
    raise ValueError(f"max_examples must be a positive int or None (all); got {max_examples!r}")
  source = sources.open_source(dataset, split=split, data_dir=data_dir, download=download)
  shape = preprocess.output_shape(source.image_shape, image_size, source.name)
  ds = sources.read_examples(source, process_index=0, process_count=1)
  if max_examples is not None:
    ds = ds.take(max_examples)
  ds = ds.map(lambda example: tf.ensure_shape(preprocess.preprocess_image(
      sources.decode_image(source, example["image"]), image_size=image_size,
      value_range=value_range), shape), num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.batch(256).prefetch(tf.data.AUTOTUNE).with_options(sources.deterministic_options())
  count, total, total_squares = 0, 0.0, 0.0
  for images in tfds.as_numpy(ds):
    images = images.astype(np.float64)
    count, total, total_squares = (count + images.size, total + images.sum(),
                                   total_squares + np.square(images).sum())
  if count == 0:
    raise ValueError(f"split {split!r} of {source.name!r} is empty; pick a split with examples")
  mean = total / count
  return float(total_squares / count - mean * mean)
