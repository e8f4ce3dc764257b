"""TFDS input pipelines: exactly resumable training batches and masked one-pass evaluation.

Batches are dicts of numpy arrays shaped [local devices, per-device batch, ...]:
'image' float32 [D, B, H, W, C] in `value_range`, 'label' int32 [D, B] where the dataset
has class labels, and for evaluation 'mask' bool [D, B]. Feed them to pmap directly or
through flax.jax_utils.prefetch_to_device(iterator, 2).

How training resumes exactly. Each process reads its own slice of the split
(tfds.split_for_jax_process, remainder dropped) and cuts it into steps_per_epoch =
examples_per_process // process_batch batches; the last partial batch of an epoch is
dropped. Epoch e is a fresh tf.data pipeline whose file order and shuffle buffer are
seeded with a seed derived from (seed, e), and whose augmentations are stateless ops
seeded by (seed, e, process, position in epoch). So batch t is a pure function of
(seed, t): starting at start_step builds epoch start_step // steps_per_epoch and skips
its first start_step % steps_per_epoch batches while they are still encoded bytes, at a
cost of at most one epoch of reading. tf.data runs with deterministic=True. Resuming
needs the same arguments (shuffle_buffer_size included) and the same number of processes
and devices.
"""
from __future__ import annotations

import itertools
import math
from typing import Iterator, NamedTuple

import jax
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from vqjax.data import image_folder
from vqjax.data import preprocess
from vqjax.data import sources

SHUFFLE_BUFFER_SIZE = 10_000  # encoded examples; whole-split shuffles for small datasets


class BatchLayout(NamedTuple):
  per_device: int
  local_devices: int
  process_batch: int  # per_device * local_devices


def batch_layout(batch_size: int) -> BatchLayout:
  """Splits a global batch size over devices; it must divide evenly."""
  devices = jax.device_count()
  if not isinstance(batch_size, int) or batch_size < 1:
    raise ValueError(f"batch size must be a positive int; got {batch_size!r}")
  if batch_size % devices:
    lower, higher = batch_size // devices * devices, (batch_size // devices + 1) * devices
    use = f"{lower} or {higher}" if lower else f"{higher}"
    raise ValueError(
        f"batch size {batch_size} is not divisible by the {devices} devices; use {use}")
  per_device = batch_size // devices
  return BatchLayout(per_device, jax.local_device_count(), per_device * jax.local_device_count())


def make_train_iterator(dataset, *, batch_size: int, data_dir: str | None = None,
                        download: bool = False, split: str = "train",
                        image_size: int | None = None, channels: int | None = None,
                        value_range=(-1.0, 1.0), random_flip: bool = False,
                        random_crop: bool = False, shuffle_buffer_size: int | None = None,
                        seed: int = 0, start_step: int = 0) -> Iterator[dict[str, np.ndarray]]:
  """Yields shuffled training batches forever, from step `start_step` on.

  The batches from start_step on equal those an uninterrupted iterator with the same
  arguments yields from that step (see the module docstring). All checks run here,
  before the first batch is asked for.

  Args:
    dataset: a TFDS name ('vqjax_digits', 'mnist', 'cifar10', ...) or a DatasetBuilder
      such as vqjax.data.image_folder_builder(root).
    batch_size: the global batch size, divisible by jax.device_count().
    data_dir: where TFDS datasets are prepared (None: TFDS's default).
    download: download and prepare the dataset into data_dir if it is not there.
    split: a split or slice, e.g. 'train' or 'train[:90%]'.
    image_size: center-crop (random_crop: randomly crop) to a square and resize to it.
    channels: the channel count the model expects; an error if the dataset differs.
    value_range: (low, high) that pixel values 0..255 map to.
    random_flip: flip left-right with probability 1/2.
    random_crop: cut the square at a random offset along the longer side.
    shuffle_buffer_size: examples in the shuffle buffer (default min(split, 10,000)).
    seed: a non-negative int fixing shuffles and augmentations.
    start_step: the number of batches already consumed.
  """
  layout = batch_layout(batch_size)
  _check_seed_and_step(seed, start_step)
  source = sources.open_source(dataset, split=split, data_dir=data_dir, download=download)
  shape = _checked_output_shape(source, image_size, channels)
  preprocess.check_value_range(value_range)
  preprocess.check_random_crop(random_crop, image_size)
  process_index, process_count = jax.process_index(), jax.process_count()
  examples_per_process = source.num_examples // process_count
  steps_per_epoch = examples_per_process // layout.process_batch
  if steps_per_epoch == 0:
    largest = examples_per_process // layout.local_devices * jax.device_count()
    raise ValueError(
        f"split {split!r} of {source.name!r} has {examples_per_process} examples per process, "
        f"fewer than one per-process batch of {layout.process_batch}; use a larger split"
        + (f" or a batch size of at most {largest}" if largest else ""))
  buffer_size = shuffle_buffer_size or min(examples_per_process, SHUFFLE_BUFFER_SIZE)
  start_epoch, skip_steps = divmod(start_step, steps_per_epoch)

  def epoch_dataset(epoch: int, skip: int) -> tf.data.Dataset:
    epoch_seed = _epoch_seed(seed, epoch)
    ds = sources.read_examples(source, process_index=process_index,
                               process_count=process_count, shuffle_seed=epoch_seed,
                               drop_remainder=True)
    ds = ds.shuffle(buffer_size, seed=epoch_seed, reshuffle_each_iteration=False)
    ds = ds.take(steps_per_epoch * layout.process_batch).enumerate()
    ds = ds.skip(skip * layout.process_batch)
    augment_seed = tf.constant([epoch_seed, process_index], tf.int64)

    def prepare(position, example):
      example_seed = tf.random.experimental.stateless_fold_in(augment_seed, position)
      return _prepare(source, example, shape, image_size=image_size, value_range=value_range,
                      random_flip=random_flip, random_crop=random_crop, seed=example_seed)

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    return _finish(ds, layout)

  def batches():
    for epoch in itertools.count(start_epoch):
      skip = skip_steps if epoch == start_epoch else 0
      for batch in tfds.as_numpy(epoch_dataset(epoch, skip)):
        yield _per_device(batch, layout)

  return _naming_unreadable_images(source, batches())


def make_eval_iterator(dataset, *, batch_size: int, data_dir: str | None = None,
                       download: bool = False, split: str = "test",
                       image_size: int | None = None, channels: int | None = None,
                       value_range=(-1.0, 1.0)) -> Iterator[dict[str, np.ndarray]]:
  """Yields one pass over `split` in stored order, without augmentation.

  The last batches are padded with zero images whose batch['mask'] is False, so every
  example counts exactly once and every process yields the same number of batches.
  Arguments are as for make_train_iterator.
  """
  layout = batch_layout(batch_size)
  source = sources.open_source(dataset, split=split, data_dir=data_dir, download=download)
  shape = _checked_output_shape(source, image_size, channels)
  preprocess.check_value_range(value_range)
  process_count = jax.process_count()
  num_batches = math.ceil(math.ceil(source.num_examples / process_count) / layout.process_batch)
  ds = sources.read_examples(source, process_index=jax.process_index(),
                             process_count=process_count)
  ds = ds.map(lambda example: _prepare(source, example, shape, image_size=image_size,
                                       value_range=value_range),
              num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.map(lambda example: {**example, "mask": tf.constant(True)})
  padding = tf.nest.map_structure(lambda spec: tf.zeros(spec.shape, spec.dtype), ds.element_spec)
  ds = ds.concatenate(tf.data.Dataset.from_tensors(padding).repeat())
  ds = _finish(ds.take(num_batches * layout.process_batch), layout)
  return _naming_unreadable_images(
      source, (_per_device(batch, layout) for batch in tfds.as_numpy(ds)))


def _naming_unreadable_images(source, batches):
  """batches; where an image folder's image fails to decode, an error naming the file."""
  try:
    yield from batches
  except tf.errors.InvalidArgumentError as error:
    if not sources.is_image_folder(source.builder):
      raise
    named = image_folder.unreadable_image_error(source.builder, source.split)
    if named is None:
      raise
    raise named from error


def _prepare(source, example, shape, **preprocess_kwargs) -> dict[str, tf.Tensor]:
  image = preprocess.preprocess_image(sources.decode_image(source, example["image"]),
                                      **preprocess_kwargs)
  prepared = {"image": tf.ensure_shape(image, shape)}
  if "label" in example:
    prepared["label"] = tf.cast(example["label"], tf.int32)
  return prepared


def _finish(ds: tf.data.Dataset, layout: BatchLayout) -> tf.data.Dataset:
  ds = ds.batch(layout.process_batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
  return ds.with_options(sources.deterministic_options())


def _per_device(batch: dict[str, np.ndarray], layout: BatchLayout) -> dict[str, np.ndarray]:
  return {key: value.reshape((layout.local_devices, layout.per_device) + value.shape[1:])
          for key, value in batch.items()}


def _checked_output_shape(source, image_size, channels) -> tuple[int, int, int]:
  shape = preprocess.output_shape(source.image_shape, image_size, source.name)
  if channels is not None and channels != shape[-1]:
    raise ValueError(
        f"dataset {source.name!r} has {shape[-1]}-channel images but channels={channels} was "
        f"requested; pass channels={shape[-1]} (or None), or pick a dataset with "
        f"{channels}-channel images")
  return shape


def _check_seed_and_step(seed, start_step) -> None:
  if not isinstance(seed, (int, np.integer)) or seed < 0:
    raise ValueError(f"seed must be a non-negative int; got {seed!r}")
  if not isinstance(start_step, (int, np.integer)) or start_step < 0:
    raise ValueError(
        f"start_step must be a non-negative int (the number of batches already consumed); "
        f"got {start_step!r}")


def _epoch_seed(seed: int, epoch: int) -> int:
  """A 31-bit seed for one epoch, a fixed function of (seed, epoch)."""
  return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1)[0] >> 1)
