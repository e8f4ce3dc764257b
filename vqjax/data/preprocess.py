"""Image preprocessing in TensorFlow: square crop, resize, flip, scale to a value range.

Randomness is stateless: each random op takes an explicit [2] int seed, so the same
example at the same position of the same epoch is always augmented the same way.
"""
from __future__ import annotations

import tensorflow as tf


def check_value_range(value_range) -> tuple[float, float]:
  """Returns `value_range` as (low, high) floats with low < high."""
  try:
    low, high = (float(value) for value in value_range)
  except (TypeError, ValueError):
    raise ValueError(
        f"value_range must be a pair (low, high) such as (-1, 1) or (0, 1); got {value_range!r}"
    ) from None
  if not low < high:
    raise ValueError(
        f"value_range {value_range!r} is empty; give (low, high) with low < high, "
        "such as (-1, 1) or (0, 1)")
  return low, high


def check_image_size(image_size) -> None:
  if image_size is not None and (not isinstance(image_size, int) or image_size < 1):
    raise ValueError(
        f"image_size must be a positive int (images become image_size x image_size) or None "
        f"(keep the stored size); got {image_size!r}")


def check_random_crop(random_crop: bool, image_size: int | None) -> None:
  if random_crop and image_size is None:
    raise ValueError(
        "random_crop needs image_size: it picks where the image_size square is cut from "
        "images resized so their shorter side is image_size")


def output_shape(stored_shape: tuple, image_size: int | None, name: str) -> tuple[int, int, int]:
  """The shape of preprocessed images, (height, width, channels)."""
  check_image_size(image_size)
  height, width, channels = stored_shape
  if channels is None:
    raise ValueError(
        f"dataset {name!r} does not fix its channel count (image shape {stored_shape}); build "
        "it with one, e.g. vqjax.data.image_folder_builder(root, channels=3)")
  if image_size is not None:
    return image_size, image_size, channels
  if height is None or width is None:
    raise ValueError(
        f"dataset {name!r} has images of varying size (shape {stored_shape}); pass "
        "image_size=N to center-crop and resize them to N x N")
  return height, width, channels


def preprocess_image(image: tf.Tensor, *, image_size: int | None = None,
                     value_range=(-1.0, 1.0), random_flip: bool = False,
                     random_crop: bool = False, seed: tf.Tensor | None = None) -> tf.Tensor:
  """Maps a uint8 [height, width, channels] image to float32 in `value_range`.

  With image_size, takes the largest square (centered, or at a random offset along the
  longer side with random_crop) and resizes it to image_size x image_size (bilinear,
  antialiased). random_crop is a no-op for square images. random_flip flips left-right
  with probability 1/2. `seed` ([2] int) is needed for any random op.
  """
  low, high = check_value_range(value_range)
  if (random_flip or random_crop) and seed is None:
    raise ValueError("random_flip and random_crop need a seed: pass seed=[2] int tensor")
  check_random_crop(random_crop, image_size)
  flip_seed, crop_seed = (tf.unstack(tf.random.experimental.stateless_split(seed, 2))
                          if seed is not None else (None, None))
  image = tf.cast(image, tf.float32)
  if image_size is not None:
    image = _square(image, crop_seed if random_crop else None)
    image = tf.image.resize(image, (image_size, image_size), method="bilinear", antialias=True)
  if random_flip:
    image = tf.image.stateless_random_flip_left_right(image, flip_seed)
  return low + (high - low) / 255.0 * tf.clip_by_value(image, 0.0, 255.0)


def _square(image: tf.Tensor, seed: tf.Tensor | None) -> tf.Tensor:
  """The largest square of `image`: centered, or at a uniform random offset given a seed."""
  height, width = tf.shape(image)[0], tf.shape(image)[1]
  side = tf.minimum(height, width)
  if seed is None:
    top, left = (height - side) // 2, (width - side) // 2
  else:
    top_seed, left_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    top = tf.random.stateless_uniform(
        (), top_seed, minval=0, maxval=height - side + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform(
        (), left_seed, minval=0, maxval=width - side + 1, dtype=tf.int32)
  return image[top:top + side, left:left + side]
