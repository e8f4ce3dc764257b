"""Shared by the vqjax.train tests: the built-in digits prepared once per test module,
and tiny configs over them."""
import ml_collections
import tensorflow_datasets as tfds

from experiments.configs import digits
from vqjax.data import digits as digits_data


def prepare_digits(data_dir: str) -> str:
  tfds.builder(digits_data.NAME, data_dir=data_dir).download_and_prepare()
  return data_dir


def tiny_config(data_dir: str, **train) -> ml_collections.ConfigDict:
  """digits.py:tiny reading data_dir, with config.train fields overridden."""
  config = digits.get_config("tiny")
  config.data.data_dir = data_dir
  config.train.update(train)
  return config
