"""A folder of images as a dataset: root/split/label/*.png (or .jpg, .jpeg).

Returns tfds's ImageFolder builder, checked first so a wrong path or layout is a clear
error. Images are decoded with a fixed channel count (grey images are expanded, RGBA is
dropped to RGB by the decoder); sizes may vary when the pipeline gets an image_size.

An image that does not decode (truncated, corrupt, not an image) stops the pipelines with
a ValueError naming the file (found by decoding the split's files in order once the
pipeline has failed). With image_folder_builder(root, skip_unreadable=True) every image
is decoded once when the builder is made, and those that fail are left out of their
split (the split's size counts only the rest) with a warning giving their count.
"""
from __future__ import annotations

import os

from absl import logging
import tensorflow as tf
import tensorflow_datasets as tfds

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
LAYOUT = "root/<split>/<label>/<image>.png (or .jpg, .jpeg), e.g. root/train/cat/0001.png"


def image_folder_builder(root_dir: str, *, channels: int = 3,
                         skip_unreadable: bool = False) -> tfds.ImageFolder:
  """A dataset builder over `root_dir`; pass it as `dataset` to the pipelines.

  skip_unreadable=True decodes every image now and leaves out those that fail, logging
  their count (see the module docstring); the builder's `skipped_images` lists them.
  """
  root_dir = os.path.expanduser(os.fspath(root_dir))
  if channels not in (1, 3):
    raise ValueError(f"channels must be 1 (grey) or 3 (RGB); got {channels!r}")
  if not os.path.isdir(root_dir):
    raise ValueError(f"image folder {root_dir} does not exist; expected the layout {LAYOUT}")
  splits = [name for name in sorted(os.listdir(root_dir))
            if os.path.isdir(os.path.join(root_dir, name))]
  if not splits:
    raise ValueError(
        f"image folder {root_dir} has no split folders; expected the layout {LAYOUT}")
  for split in splits:
    if not _has_images(os.path.join(root_dir, split)):
      raise ValueError(
          f"split folder {os.path.join(root_dir, split)} has no label folders with images; "
          f"expected the layout {LAYOUT}")
  if skip_unreadable:
    return _ReadableImageFolder(root_dir, shape=(None, None, channels))
  return tfds.ImageFolder(root_dir, shape=(None, None, channels))


def first_unreadable_image(builder: tfds.ImageFolder, split: str) -> tuple[str, str] | None:
  """(path, why) of the first image of `split`, in stored order, that does not decode."""
  for path in _image_paths(builder, split):
    why = _decode_error(builder, path)
    if why:
      return path, why
  return None


def unreadable_image_error(builder: tfds.ImageFolder, split: str) -> ValueError | None:
  """The error naming the first image of `split` that does not decode; None if all do."""
  found = first_unreadable_image(builder, split)
  if found is None:
    return None
  path, why = found
  return ValueError(
      f"image {path} in image folder {builder.data_dir} cannot be decoded ({why}); replace "
      "or delete it, or pass skip_unreadable=True to image_folder_builder to leave out every "
      "image that does not decode (their count is logged)")


class _ReadableImageFolder(tfds.ImageFolder, skip_registration=True):
  """An ImageFolder without the images that do not decode (decoded once, here)."""
  name = "image_folder"  # as tfds.ImageFolder's, for messages

  def __init__(self, root_dir: str, *, shape):
    super().__init__(root_dir, shape=shape)
    self.skipped_images = []
    for split, examples in self._split_examples.items():
      unreadable = {e.image_path for e in examples if _decode_error(self, e.image_path)}
      self.skipped_images += sorted(unreadable)
      self._split_examples[split] = [e for e in examples if e.image_path not in unreadable]
    self.info.set_splits(tfds.core.SplitDict([
        tfds.core.SplitInfo(name=split, shard_lengths=[len(examples)], num_bytes=0)
        for split, examples in self._split_examples.items()]))
    if self.skipped_images:
      logging.warning("image folder %s: skipped %d unreadable image(s) of %d (skip_unreadable"
                      "=True), e.g. %s", root_dir, len(self.skipped_images),
                      len(self.skipped_images) + sum(map(len, self._split_examples.values())),
                      ", ".join(self.skipped_images[:3]))


def _image_paths(builder: tfds.ImageFolder, split: str) -> list[str]:
  examples = builder._split_examples[split]  # pylint: disable=protected-access
  return [example.image_path for example in examples]


def _decode_error(builder: tfds.ImageFolder, path: str) -> str | None:
  """Why the image at path does not decode as the pipelines decode it; None if it does."""
  try:
    builder.info.features["image"].decode_example(tf.io.read_file(path))
  except tf.errors.OpError as error:
    return f"{type(error).__name__}: {error.message.splitlines()[-1][:200]}"
  return None


def _has_images(split_dir: str) -> bool:
  for label in os.listdir(split_dir):
    label_dir = os.path.join(split_dir, label)
    if os.path.isdir(label_dir) and any(
        name.lower().endswith(IMAGE_EXTENSIONS) for name in os.listdir(label_dir)):
      return True
  return False
