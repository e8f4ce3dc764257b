"""Where examples come from: a TFDS dataset by name, or a builder such as an image folder.

`open_source` checks everything it can before anything runs (the name, that the data is
prepared, the split, the image feature) and never falls back to another dataset.
`read_examples` reads one process's share of a split with images still encoded, so
shuffling and skipping touch only bytes; never through TFDS's automatic cache, which every
pipeline here builds anew each epoch (so it saves nothing) and which warns whenever a
pass stops early.
"""
from __future__ import annotations

import difflib
import os
from typing import NamedTuple

import tensorflow as tf
import tensorflow_datasets as tfds

CATALOGUE_URL = "https://www.tensorflow.org/datasets/catalog/overview"
OFFLINE_DATASETS = ("vqjax_digits",)  # prepared from files that ship with a Python package


class Source(NamedTuple):
  """A prepared split of a dataset with a uint8 'image' feature."""
  name: str
  builder: tfds.core.DatasetBuilder
  split: str
  num_examples: int  # in the whole split, over all processes
  image_shape: tuple  # as stored, (height, width, channels); None where it varies
  num_classes: int | None  # None when there is no ClassLabel 'label' feature


def is_image_folder(builder: tfds.core.DatasetBuilder) -> bool:
  return isinstance(builder, tfds.ImageFolder)


def get_builder(dataset, *, data_dir: str | None = None,
                download: bool = False) -> tfds.core.DatasetBuilder:
  """Returns a prepared builder for `dataset` (a TFDS name or a DatasetBuilder).

  With download=True a dataset missing from data_dir is downloaded and prepared there;
  with download=False it is an error.
  """
  if isinstance(dataset, tfds.core.DatasetBuilder):
    builder = dataset
  elif isinstance(dataset, str):
    builder = _builder_by_name(dataset, data_dir)
  else:
    raise ValueError(
        "dataset must be a TFDS name such as 'vqjax_digits' or 'mnist', or a "
        "tfds.core.DatasetBuilder such as vqjax.data.image_folder_builder(root); "
        f"got {type(dataset).__name__}")
  if not is_image_folder(builder) and not builder.is_prepared():
    if not download:
      raise ValueError(_not_prepared_message(builder))
    builder.download_and_prepare()
  _check_image_feature(builder)
  return builder


def open_source(dataset, *, split: str, data_dir: str | None = None,
                download: bool = False) -> Source:
  """Checks `dataset` and `split` and describes them; reads nothing but metadata."""
  builder = get_builder(dataset, data_dir=data_dir, download=download)
  features = builder.info.features
  label = features["label"] if "label" in features.keys() else None
  num_classes = label.num_classes if isinstance(label, tfds.features.ClassLabel) else None
  return Source(name=builder.name, builder=builder, split=split,
                num_examples=num_examples(builder, split),
                image_shape=tuple(features["image"].shape), num_classes=num_classes)


def num_examples(builder: tfds.core.DatasetBuilder, split: str) -> int:
  """The number of examples in `split` (slices like 'train[:90%]' work for TFDS datasets)."""
  available = list(builder.info.splits.keys())
  hint = (" (image folders take whole splits: one folder per split)" if is_image_folder(builder)
          else "; slices such as 'train[:90%]' or 'train+test' also work")
  if is_image_folder(builder) and split not in available:
    raise ValueError(
        f"unknown split {split!r} for image folder {builder.data_dir}; "
        f"available splits: {', '.join(map(repr, available)) or 'none'}{hint}")
  try:
    return builder.info.splits[split].num_examples
  except (KeyError, ValueError, AssertionError):
    raise ValueError(
        f"unknown split {split!r} for dataset {builder.name!r}; "
        f"available splits: {', '.join(map(repr, available)) or 'none'}{hint}") from None


def read_examples(source: Source, *, process_index: int, process_count: int,
                  shuffle_seed: int | None = None,
                  drop_remainder: bool = False) -> tf.data.Dataset:
  """One process's share of the split as {'image': encoded bytes[, 'label': int64]}.

  The order is a pure function of `shuffle_seed` (None: stored order). With
  drop_remainder=True every process gets exactly num_examples // process_count examples;
  otherwise the first processes get one more where the split does not divide evenly.
  """
  builder = source.builder
  decoders = {"image": tfds.decode.SkipDecoding()}
  if is_image_folder(builder):
    # ImageFolder reads no sub-splits and shuffles files unseeded: read all in order, then shard.
    ds = builder.as_dataset(split=source.split, shuffle_files=False, decoders=decoders)
    ds = ds.shard(process_count, process_index)
    if drop_remainder:
      ds = ds.take(source.num_examples // process_count)
  else:
    process_split = tfds.split_for_jax_process(
        source.split, process_index=process_index, process_count=process_count,
        drop_remainder=drop_remainder)
    ds = builder.as_dataset(
        split=process_split, shuffle_files=shuffle_seed is not None, decoders=decoders,
        read_config=tfds.ReadConfig(shuffle_seed=shuffle_seed, options=deterministic_options(),
                                    try_autocache=False))
  keys = ("image", "label") if source.num_classes is not None else ("image",)
  return ds.map(lambda example: {key: example[key] for key in keys})


def decode_image(source: Source, encoded: tf.Tensor) -> tf.Tensor:
  """Decodes one encoded image to uint8 [height, width, channels]."""
  return source.builder.info.features["image"].decode_example(encoded)


def deterministic_options() -> tf.data.Options:
  options = tf.data.Options()
  options.deterministic = True
  return options


def _builder_by_name(name: str, data_dir: str | None) -> tfds.core.DatasetBuilder:
  try:
    return tfds.builder(name, data_dir=data_dir)
  except tfds.core.DatasetNotFoundError:
    raise ValueError(_unknown_name_message(name, data_dir)) from None
  except AssertionError as error:  # how TFDS reports an unknown version
    raise ValueError(
        f"dataset {name!r} cannot be built: {error}. Check the version against the TFDS "
        f"catalogue ({CATALOGUE_URL}) or drop it to use the newest") from None


def _unknown_name_message(name: str, data_dir: str | None) -> str:
  root = os.path.expanduser(data_dir or tfds.core.constants.DATA_DIR)
  prepared = sorted(os.listdir(root)) if os.path.isdir(root) else []
  known = tfds.list_builders(with_community_datasets=False) + prepared
  close = difflib.get_close_matches(name.split(":")[0].split("/")[0], known, n=3)
  guess = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
  held = f"it holds {', '.join(prepared)}" if prepared else "it holds no datasets"
  return (
      f"unknown dataset {name!r}: TFDS has no builder of that name and data_dir {root} "
      f"has no prepared dataset of that name ({held}). {guess}Check the name against "
      f"tfds.list_builders() or the TFDS catalogue ({CATALOGUE_URL}), or point data_dir at "
      f"the directory that holds it; vqjax's built-in offline dataset is 'vqjax_digits'")


def _not_prepared_message(builder: tfds.core.DatasetBuilder) -> str:
  searched = builder.data_dir
  dataset_dir = os.path.dirname(searched)
  versions = sorted(
      version for version in (os.listdir(dataset_dir) if os.path.isdir(dataset_dir) else [])
      if os.path.isfile(os.path.join(dataset_dir, version, "dataset_info.json")))
  found = (f"; that directory holds version(s) {', '.join(versions)}: ask for one as "
           f"'{builder.name}:{versions[-1]}'" if versions else "")
  how = ("to prepare it there (no network needed: it reads scikit-learn's bundled copy)"
         if builder.name in OFFLINE_DATASETS else "to download and prepare it there")
  return (
      f"dataset {builder.name!r} version {builder.version} is not prepared in data_dir "
      f"{os.path.dirname(dataset_dir)} (searched {searched}){found}. Pass download=True {how}, "
      f"run tfds.builder({builder.name!r}, data_dir=...).download_and_prepare() first, or "
      f"point data_dir at a directory that holds it")


def _check_image_feature(builder: tfds.core.DatasetBuilder) -> None:
  features = builder.info.features
  image = features["image"] if "image" in features.keys() else None
  if not isinstance(image, tfds.features.Image):
    raise ValueError(
        f"dataset {builder.name!r} has no 'image' feature of type tfds.features.Image "
        f"(its features: {', '.join(features.keys())}); vqjax pipelines read image datasets")
  if tf.as_dtype(image.np_dtype) != tf.uint8:  # .dtype: deprecated, a warning every run
    raise ValueError(
        f"dataset {builder.name!r} stores {tf.as_dtype(image.np_dtype).name} images; vqjax "
        "pipelines read uint8 images (0..255): pick a uint8 image dataset")
