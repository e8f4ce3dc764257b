"""A folder of images as a dataset: root/split/label/*.png (or .jpg, .jpeg).

Returns tfds's ImageFolder builder, checked first so a wrong path or layout is a clear
error. Images are decoded with a fixed channel count (grey images are expanded, RGBA is
dropped to RGB by the decoder); sizes may vary when the pipeline gets an image_size.
"""
from __future__ import annotations

import os

import tensorflow_datasets as tfds

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
LAYOUT = "root/<split>/<label>/<image>.png (or .jpg, .jpeg), e.g. root/train/cat/0001.png"


def image_folder_builder(root_dir: str, *, channels: int = 3) -> tfds.ImageFolder:
  """A dataset builder over `root_dir`; pass it as `dataset` to the pipelines."""
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
  return tfds.ImageFolder(root_dir, shape=(None, None, channels))


def _has_images(split_dir: str) -> bool:
  for label in os.listdir(split_dir):
    label_dir = os.path.join(split_dir, label)
    if os.path.isdir(label_dir) and any(
        name.lower().endswith(IMAGE_EXTENSIONS) for name in os.listdir(label_dir)):
      return True
  return False
