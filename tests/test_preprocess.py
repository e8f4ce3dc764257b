"""Image preprocessing: value ranges, square crops, resizes and seeded augmentation."""
import numpy as np
import pytest
import tensorflow as tf

from vqjax.data import preprocess


def _ramp(height, width, channels=1):
  values = np.arange(height * width * channels) % 256
  return tf.constant(values.reshape(height, width, channels), tf.uint8)


@pytest.mark.parametrize("value_range", [(-1, 1), (0, 1), (-0.5, 0.5)])
def test_maps_0_255_onto_the_value_range(value_range):
  image = tf.constant([[[0], [255]], [[51], [102]]], tf.uint8)
  out = preprocess.preprocess_image(image, value_range=value_range).numpy()
  low, high = value_range
  assert out.dtype == np.float32
  np.testing.assert_allclose(out[0, :, 0], [low, high], atol=1e-6)
  np.testing.assert_allclose(out[1, 0, 0], low + 0.2 * (high - low), atol=1e-6)


def test_center_crop_takes_the_middle_square():
  image = _ramp(4, 8)
  out = preprocess.preprocess_image(image, image_size=4, value_range=(0, 255)).numpy()
  np.testing.assert_allclose(out, image.numpy()[:, 2:6].astype(np.float32), atol=1e-3)


def test_resize_gives_image_size_and_keeps_the_range():
  out = preprocess.preprocess_image(_ramp(30, 20, 3), image_size=7).numpy()
  assert out.shape == (7, 7, 3)
  assert out.min() >= -1 and out.max() <= 1


def test_random_crop_is_a_seeded_square_of_the_image():
  image = _ramp(3, 9)
  crops = {preprocess.preprocess_image(image, image_size=3, value_range=(0, 255),
                                       random_crop=True, seed=tf.constant([7, i])).numpy()
           .tobytes() for i in range(40)}
  windows = {image.numpy()[:, left:left + 3].astype(np.float32).tobytes() for left in range(7)}
  assert crops <= windows and len(crops) > 3
  again = [preprocess.preprocess_image(image, image_size=3, random_crop=True,
                                       seed=tf.constant([7, 1])).numpy() for _ in range(2)]
  np.testing.assert_array_equal(*again)


def test_random_flip_flips_about_half_and_repeats_per_seed():
  image = _ramp(2, 5)
  flipped = [bool(np.array_equal(
      preprocess.preprocess_image(image, random_flip=True, value_range=(0, 255),
                                  seed=tf.constant([0, i])).numpy(),
      image.numpy()[:, ::-1].astype(np.float32))) for i in range(64)]
  assert 16 < sum(flipped) < 48
  first = preprocess.preprocess_image(image, random_flip=True, seed=tf.constant([0, 3]))
  np.testing.assert_array_equal(
      first, preprocess.preprocess_image(image, random_flip=True, seed=tf.constant([0, 3])))


@pytest.mark.parametrize("value_range", [(1, -1), (0, 0), (1,), "ab", None])
def test_bad_value_range(value_range):
  with pytest.raises(ValueError, match="value_range"):
    preprocess.check_value_range(value_range)


@pytest.mark.parametrize("image_size", [0, -3, 2.5, "32"])
def test_bad_image_size(image_size):
  with pytest.raises(ValueError, match="image_size must be a positive int"):
    preprocess.check_image_size(image_size)


def test_random_crop_needs_image_size():
  with pytest.raises(ValueError, match="random_crop needs image_size"):
    preprocess.check_random_crop(True, None)
  with pytest.raises(ValueError, match="random_crop needs image_size"):
    preprocess.preprocess_image(_ramp(2, 2), random_crop=True, seed=tf.constant([0, 0]))


def test_augmentation_needs_a_seed():
  with pytest.raises(ValueError, match="need a seed"):
    preprocess.preprocess_image(_ramp(2, 2), random_flip=True)


def test_output_shape():
  assert preprocess.output_shape((28, 28, 1), None, "mnist") == (28, 28, 1)
  assert preprocess.output_shape((None, None, 3), 64, "folder") == (64, 64, 3)
  with pytest.raises(ValueError, match=r"varying size.*pass image_size"):
    preprocess.output_shape((None, None, 3), None, "folder")
  with pytest.raises(ValueError, match="does not fix its channel count"):
    preprocess.output_shape((None, None, None), 64, "folder")
