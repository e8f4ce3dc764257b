"""Input pipelines: batch layout, exact resumption, masked evaluation and early errors."""
import itertools
import pathlib

import flax.jax_utils
import jax
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from vqjax.data import digits
from vqjax.data import pipeline

SHARED_TFDS = pathlib.Path(__file__).resolve().parents[2] / "shared" / "tfds"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  tfds.builder(digits.NAME, data_dir=data_dir).download_and_prepare()
  return data_dir


def _take(iterator, count):
  return list(itertools.islice(iterator, count))


def _assert_same_batches(batches, others):
  assert len(batches) == len(others)
  for batch, other in zip(batches, others):
    assert batch.keys() == other.keys()
    for key in batch:
      np.testing.assert_array_equal(batch[key], other[key])


def test_tensorflow_sees_no_gpu():
  assert not tf.config.get_visible_devices("GPU")


def test_batch_layout_splits_over_devices():
  assert jax.device_count() == 4
  assert pipeline.batch_layout(32) == pipeline.BatchLayout(8, 4, 32)


@pytest.mark.parametrize("batch_size, fix", [(30, "use 28 or 32"), (2, "use 4")])
def test_batch_size_must_divide_over_devices(batch_size, fix):
  with pytest.raises(ValueError, match=f"batch size {batch_size} is not divisible by the 4 "
                     f"devices; {fix}"):
    pipeline.batch_layout(batch_size)


@pytest.mark.parametrize("value_range", [(-1.0, 1.0), (0.0, 1.0)])
def test_train_batches_have_the_layout_and_range(data_dir, value_range):
  batch = next(pipeline.make_train_iterator("vqjax_digits", batch_size=32, data_dir=data_dir,
                                            value_range=value_range, random_flip=True))
  assert batch["image"].shape == (4, 8, 8, 8, 1) and batch["image"].dtype == np.float32
  assert batch["label"].shape == (4, 8) and batch["label"].dtype == np.int32
  assert value_range[0] <= batch["image"].min() < batch["image"].max() <= value_range[1]


def test_image_size_resizes(data_dir):
  batch = next(pipeline.make_train_iterator("vqjax_digits", batch_size=8, data_dir=data_dir,
                                            image_size=16, random_crop=True))
  assert batch["image"].shape == (4, 2, 16, 16, 1)


def test_epochs_are_fresh_permutations(data_dir):
  # 1,500 train examples in batches of 500: 3 steps an epoch and nothing dropped.
  batches = _take(pipeline.make_train_iterator("vqjax_digits", batch_size=500,
                                               data_dir=data_dir, value_range=(0, 255)), 6)
  epochs = [np.concatenate([batch["image"].reshape(500, -1) for batch in batches[i:i + 3]])
            for i in (0, 3)]
  for epoch in epochs:
    assert len({row.tobytes() for row in epoch}) == len(epoch) == 1500
  assert sorted(row.tobytes() for row in epochs[0]) == sorted(row.tobytes() for row in epochs[1])
  assert not np.array_equal(epochs[0], epochs[1])


def test_seed_changes_the_order(data_dir):
  first = [next(pipeline.make_train_iterator("vqjax_digits", batch_size=16, data_dir=data_dir,
                                             seed=seed))["label"] for seed in (0, 0, 1)]
  np.testing.assert_array_equal(first[0], first[1])
  assert not np.array_equal(first[0], first[2])


@pytest.mark.parametrize("start_step", [5, 23, 24])
def test_resume_digits_equals_uninterrupted(data_dir, start_step):
  # batch 64: 23 steps an epoch, so these starts fall inside, at the end and past epoch 0.
  kwargs = dict(batch_size=64, data_dir=data_dir, random_flip=True, image_size=8,
                random_crop=True, seed=3)
  uninterrupted = _take(pipeline.make_train_iterator("vqjax_digits", **kwargs), start_step + 4)
  resumed = _take(pipeline.make_train_iterator("vqjax_digits", start_step=start_step, **kwargs), 4)
  _assert_same_batches(uninterrupted[start_step:], resumed)


@pytest.mark.skipif(not (SHARED_TFDS / "mnist").is_dir(), reason=f"no MNIST in {SHARED_TFDS}")
def test_resume_mnist_equals_uninterrupted():
  # train[:1000] in batches of 32: 31 steps an epoch; resume 2 steps before the boundary.
  kwargs = dict(batch_size=32, data_dir=str(SHARED_TFDS), split="train[:1000]",
                random_flip=True, seed=1)
  uninterrupted = _take(pipeline.make_train_iterator("mnist", **kwargs), 33)
  assert uninterrupted[0]["image"].shape == (4, 8, 28, 28, 1)
  resumed = _take(pipeline.make_train_iterator("mnist", start_step=29, **kwargs), 4)
  _assert_same_batches(uninterrupted[29:], resumed)


def test_eval_counts_every_example_once(data_dir):
  batches = list(pipeline.make_eval_iterator("vqjax_digits", batch_size=64, data_dir=data_dir,
                                             value_range=(0, 255)))
  assert len(batches) == 5  # 297 test examples
  assert all(batch["image"].shape == (4, 16, 8, 8, 1) for batch in batches)
  mask = np.concatenate([batch["mask"].reshape(-1) for batch in batches])
  assert mask.sum() == 297 and mask[:297].all() and not mask[297:].any()
  images = np.concatenate([batch["image"].reshape(-1, 64) for batch in batches])[:297]
  assert len({row.tobytes() for row in images}) == 297
  assert not np.concatenate([batch["image"] for batch in batches]).reshape(-1, 64)[297:].any()
  again = list(pipeline.make_eval_iterator("vqjax_digits", batch_size=64, data_dir=data_dir,
                                           value_range=(0, 255)))
  _assert_same_batches(batches, again)


def test_mock_data_catalogue_dataset(tmp_path):
  # Mocked examples are random, but splits come from metadata in data_dir: write it.
  builder = tfds.builder("cifar10", data_dir=str(tmp_path))
  builder.info.set_splits(tfds.core.SplitDict([
      tfds.core.SplitInfo(name=name, shard_lengths=[12], num_bytes=0)
      for name in ("train", "test")]))
  pathlib.Path(builder.data_dir).mkdir(parents=True)
  builder.info.write_to_directory(builder.data_dir)
  with tfds.testing.mock_data(num_examples=12, data_dir=str(tmp_path)):
    train = _take(pipeline.make_train_iterator("cifar10", batch_size=4, random_flip=True,
                                               image_size=16, channels=3), 4)
    resumed = _take(pipeline.make_train_iterator("cifar10", batch_size=4, random_flip=True,
                                                 image_size=16, channels=3, start_step=2), 2)
    evaluation = list(pipeline.make_eval_iterator("cifar10", batch_size=8))
  assert train[0]["image"].shape == (4, 1, 16, 16, 3)
  _assert_same_batches(train[2:], resumed)
  assert len(evaluation) == 2 and sum(batch["mask"].sum() for batch in evaluation) == 12
  assert evaluation[0]["image"].shape == (4, 2, 32, 32, 3)


def test_batches_feed_prefetch_to_device(data_dir):
  iterator = pipeline.make_eval_iterator("vqjax_digits", batch_size=8, data_dir=data_dir)
  batch = next(flax.jax_utils.prefetch_to_device(iterator, 2))
  assert batch["image"].shape == (4, 2, 8, 8, 1)
  assert len(batch["image"].sharding.device_set) == 4


def test_errors_come_before_any_batch(data_dir, tmp_path):
  make = pipeline.make_train_iterator
  with pytest.raises(ValueError, match="not divisible by the 4 devices; use 28 or 32"):
    make("vqjax_digits", batch_size=30, data_dir=data_dir)
  with pytest.raises(ValueError, match=r"unknown dataset 'digitz'.*tfds.list_builders"):
    make("digitz", batch_size=32, data_dir=data_dir)
  with pytest.raises(ValueError, match=r"unknown split 'valid'.*'train', 'test'"):
    pipeline.make_eval_iterator("vqjax_digits", batch_size=32, data_dir=data_dir, split="valid")
  with pytest.raises(ValueError, match=r"not prepared in data_dir .*download=True"):
    make("vqjax_digits", batch_size=32, data_dir=str(tmp_path))
  with pytest.raises(ValueError, match=r"1-channel images but channels=3.*channels=1"):
    make("vqjax_digits", batch_size=32, data_dir=data_dir, channels=3)
  with pytest.raises(ValueError, match="random_crop needs image_size"):
    make("vqjax_digits", batch_size=32, data_dir=data_dir, random_crop=True)
  with pytest.raises(ValueError, match="value_range"):
    make("vqjax_digits", batch_size=32, data_dir=data_dir, value_range=(1, 0))
  with pytest.raises(ValueError, match="start_step must be a non-negative int"):
    make("vqjax_digits", batch_size=32, data_dir=data_dir, start_step=-1)
  with pytest.raises(ValueError, match=r"150 examples per process, fewer than .* 160"):
    make("vqjax_digits", batch_size=160, data_dir=data_dir, split="train[:10%]")
