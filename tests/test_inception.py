"""Tests for vqjax.models.inception: the Flax network equals the TorchScript FID Inception
(recorded features; live when torch is installed), its resizing conventions, a reference FID."""
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from record_inception_reference import (REFERENCE, reference_images,  # noqa: E402
                                        torchmetrics_doctest_images)

from vqjax.metrics import feature_statistics, fid  # noqa: E402
from vqjax.models import inception_weights  # noqa: E402
from vqjax.models.inception import (InceptionV3, check_inception_images,  # noqa: E402
                                    resize_images)


def _weights_or_skip():
  try:
    return inception_weights.load_inception_variables()
  except ValueError as error:
    pytest.skip(f"FID Inception weights not installed ({error})")


@pytest.fixture(scope="module")
def variables():
  return _weights_or_skip()


@pytest.fixture(scope="module")
def pool3(variables):
  """The Flax network's pool3 features of the 4 reference images."""
  apply = jax.jit(lambda v, x: InceptionV3().apply(v, x)["pool3"])
  return np.asarray(apply(variables, reference_images().astype(np.float32)))


def _relative_error(actual, expected):
  return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


def test_pool3_equals_the_recorded_torchscript_features(pool3):
  recorded = np.load(REFERENCE)["pool3"]
  assert pool3.shape == recorded.shape == (4, 2048)
  assert _relative_error(pool3, recorded) < 1e-4
  assert np.linalg.norm(pool3 - recorded) / np.linalg.norm(recorded) < 1e-4


def test_pool3_equals_the_live_torchscript_module(pool3):
  torch = pytest.importorskip("torch", reason="torch is a test-only extra; the recorded "
                              "features are checked without it")
  model = torch.jit.load(inception_weights.package_weights_path()).eval()
  images = torch.from_numpy(reference_images()).permute(0, 3, 1, 2).float()
  with torch.no_grad():
    expected = model((images - 128) / 128).numpy()
  assert _relative_error(pool3, expected) < 1e-4


def test_fid64_of_torchmetrics_doctest_images_matches_the_torchscript_value(variables):
  # torchmetrics' FID doctest (feature=64) on its images, drawn here without torch; its
  # printed 12.72 / 12.64 come from other images, as its model's init consumes torch's RNG
  # before the images are drawn. The recorded value is the TorchScript stem's (12.6929).
  stem = jax.jit(lambda x: InceptionV3(depth="pool0").apply(variables, x)["pool0"])
  sets = [np.concatenate([np.asarray(stem(images[i:i + 50].astype(np.float32)))
                          for i in range(0, 100, 50)]) for images in torchmetrics_doctest_images()]
  value = fid(feature_statistics(sets[0]), feature_statistics(sets[1]))
  assert value == pytest.approx(float(np.load(REFERENCE)["fid64_seed123"]), rel=1e-4)
  assert value == pytest.approx(12.6929, abs=1e-3)


def test_tf1_resize_is_tensorflow_1x_resize_bilinear():
  tf = pytest.importorskip("tensorflow")
  images = np.random.RandomState(1).uniform(0, 255, (2, 32, 24, 3)).astype(np.float32)
  expected = tf.compat.v1.image.resize_bilinear(images, (299, 299), align_corners=False,
                                                half_pixel_centers=False).numpy()
  np.testing.assert_allclose(resize_images(jnp.asarray(images), 299, "tf1"), expected,
                             atol=1e-3)


def test_pil_resize_is_pil_bilinear():
  from PIL import Image
  images = np.random.RandomState(2).uniform(0, 255, (1, 32, 32, 1)).astype(np.float32)
  expected = np.asarray(Image.fromarray(images[0, ..., 0], mode="F").resize(
      (299, 299), Image.BILINEAR))
  actual = resize_images(jnp.asarray(np.repeat(images, 3, -1)), 299, "pil")[0, ..., 0]
  np.testing.assert_allclose(actual, expected, atol=1e-2)


def test_299_images_are_not_resized():
  images = jnp.arange(2 * 299 * 299 * 3, dtype=jnp.float32).reshape(2, 299, 299, 3)
  assert resize_images(images, 299, "tf1") is images


def test_shapes_and_depth_without_weights():
  images = jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)
  init = lambda network: jax.eval_shape(
      lambda x: network.apply(network.init(jax.random.key(0), x), x), images)
  assert {k: v.shape for k, v in init(InceptionV3()).items()} == {
      "pool0": (2, 64), "pool3": (2, 2048)}
  assert {k: v.shape for k, v in init(InceptionV3(depth="pool0")).items()} == {"pool0": (2, 64)}
  assert init(InceptionV3(num_classes=1008))["logits"].shape == (2, 1008)


@pytest.mark.parametrize("shape, message", [
    ((32, 32, 3), "add a batch axis"), ((1, 32, 32, 1), "repeat grayscale"),
    ((1, 1, 32, 3), "at least 2x2")])
def test_bad_image_shapes_say_what_to_do(shape, message):
  with pytest.raises(ValueError, match=message):
    check_inception_images(jnp.zeros(shape))


def test_unknown_resize_and_depth_are_refused():
  with pytest.raises(ValueError, match="'tf1'"):
    resize_images(jnp.zeros((1, 8, 8, 3)), 299, "nearest")
  with pytest.raises(ValueError, match="'pool3' gives"):
    InceptionV3(depth="pool2").init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
