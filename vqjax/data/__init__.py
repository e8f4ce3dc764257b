"""Input pipelines over TFDS datasets and image folders, and the built-in offline dataset.

Importing this package registers 'vqjax_digits' (scikit-learn's 8x8 digits) with TFDS.
"""
import tensorflow as tf

try:
  tf.config.set_visible_devices([], "GPU")  # keep TensorFlow off the accelerators JAX uses
except RuntimeError:  # TensorFlow already initialized its devices; nothing left to change
  pass

# pylint: disable=g-import-not-at-top,wrong-import-position
from vqjax.data import digits
from vqjax.data import image_folder
from vqjax.data import info
from vqjax.data import pipeline
from vqjax.data import preprocess
from vqjax.data import sources
from vqjax.data.digits import NAME as DEFAULT_DATASET
from vqjax.data.image_folder import image_folder_builder
from vqjax.data.info import DatasetInfo, data_variance, dataset_info
from vqjax.data.pipeline import batch_layout, make_eval_iterator, make_train_iterator
