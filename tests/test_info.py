"""Dataset facts for the trainer: shapes, sizes, classes and data variance."""
import numpy as np
import pytest
import tensorflow_datasets as tfds

from vqjax.data import digits
from vqjax.data import info


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  tfds.builder(digits.NAME, data_dir=data_dir).download_and_prepare()
  return data_dir


def test_dataset_info(data_dir):
  described = info.dataset_info("vqjax_digits", data_dir=data_dir)
  assert described == info.DatasetInfo(
      name="vqjax_digits", image_shape=(8, 8, 1), channels=1, num_classes=10,
      num_examples={"train": 1500, "test": 297})
  assert info.dataset_info("vqjax_digits", data_dir=data_dir, image_size=16).image_shape == (
      16, 16, 1)


@pytest.mark.parametrize("value_range", [(-1.0, 1.0), (0.0, 1.0)])
def test_data_variance_matches_numpy(data_dir, value_range):
  images, _ = digits.digits_arrays()
  low, high = value_range
  expected = np.var(low + (high - low) * images[:1500].astype(np.float64) / 255)
  got = info.data_variance("vqjax_digits", data_dir=data_dir, value_range=value_range)
  np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_data_variance_of_the_first_examples(data_dir):
  full = info.data_variance("vqjax_digits", data_dir=data_dir, split="test")
  part = info.data_variance("vqjax_digits", data_dir=data_dir, split="test", max_examples=10)
  assert part > 0 and part != full
  with pytest.raises(ValueError, match="max_examples must be a positive int"):
    info.data_variance("vqjax_digits", data_dir=data_dir, max_examples=0)


def test_errors_are_the_sources_errors(tmp_path):
  with pytest.raises(ValueError, match="not prepared in data_dir"):
    info.dataset_info("vqjax_digits", data_dir=str(tmp_path))
