"""scikit-learn's bundled handwritten digits as a TFDS dataset: the built-in offline dataset.

Importing this module registers the builder under the name `vqjax_digits` (a name TFDS's
catalogue does not use). `download_and_prepare` reads only the copy of the data that ships
inside scikit-learn, so it works offline into any data_dir: by default TFDS's,
~/tensorflow_datasets (or $TFDS_DATA_DIR), as <data_dir>/vqjax_digits/1.0.0 (about 100 KB).
It prepares under a file lock there, so two first runs at once neither crash nor prepare
twice: the second waits, then reads what the first wrote.
"""
from __future__ import annotations

import contextlib
import fcntl
import os

from absl import logging
from etils import epath
import numpy as np
import tensorflow_datasets as tfds

NAME = "vqjax_digits"
NUM_TEST = 297  # the last 297 of sklearn's 1,797 images; the first 1,500 are train


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
  """Returns sklearn's digits as (images uint8 [1797, 8, 8, 1] in 0..255, labels int64 [1797])."""
  from sklearn.datasets import load_digits  # pylint: disable=import-outside-toplevel
  digits = load_digits()
  # 0..16 -> 0..255, rounded half up.
  images = np.floor(digits.images * (255.0 / 16.0) + 0.5).astype(np.uint8)[..., None]
  return images, digits.target.astype(np.int64)


class VqjaxDigits(tfds.core.GeneratorBasedBuilder):
  """8x8 grey handwritten digits (UCI optdigits, bundled with scikit-learn), 10 classes.

  Splits: 'train' is sklearn's first 1,500 images, 'test' its last 297 (fixed by position,
  so every machine gets the same split). Pixel values 0..16 are scaled to 0..255.
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release: 1,500 train and 297 test images."}
  # Set directly: TFDS's own lookup imports importlib_resources, which vqjax does not require.
  code_path = epath.Path(__file__)

  def download_and_prepare(self, *args, **kwargs) -> None:
    """TFDS's download_and_prepare under a lock beside the data: where another process
    prepared the data while this one waited, reads its description instead."""
    with preparation_lock(self.data_dir):
      if self.is_prepared():
        self.info.read_from_directory(self.data_dir)
        return
      logging.info("preparing the %s dataset in %s (once: later runs read it there; set "
                   "TFDS_DATA_DIR or config.data.data_dir for another place)", NAME,
                   self.data_dir)
      super().download_and_prepare(*args, **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=self.__doc__,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(8, 8, 1)),
            "label": tfds.features.ClassLabel(num_classes=10),
        }),
        supervised_keys=("image", "label"),
        homepage="https://scikit-learn.org/stable/datasets/toy_dataset.html#digits-dataset",
        citation="Alpaydin and Kaynak, Optical Recognition of Handwritten Digits, UCI, 1998.",
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing to download: the data ships with scikit-learn
    images, labels = digits_arrays()
    num_train = len(images) - NUM_TEST
    return {
        "train": self._generate_examples(images, labels, range(num_train)),
        "test": self._generate_examples(images, labels, range(num_train, len(images))),
    }

  def _generate_examples(self, images, labels, indices):
    for index in indices:
      yield int(index), {"image": images[index], "label": int(labels[index])}


@contextlib.contextmanager
def preparation_lock(data_dir: str):
  """Holds an exclusive lock on the file .<version>.lock beside the version folder
  data_dir (released when the process ends, however it ends); no lock for a URL such as
  gs://..., which has no file locks."""
  if "://" in str(data_dir):
    yield
    return
  parent, version = os.path.split(os.path.normpath(str(data_dir)))
  os.makedirs(parent, exist_ok=True)
  with open(os.path.join(parent, f".{version}.lock"), "a") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)
