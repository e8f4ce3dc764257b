"""Resolving datasets: clear errors before anything runs, and per-process reads."""
import numpy as np
import pytest
import tensorflow_datasets as tfds

from vqjax.data import digits
from vqjax.data import sources


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  tfds.builder(digits.NAME, data_dir=data_dir).download_and_prepare()
  return data_dir


def test_open_source_describes_a_split(data_dir):
  source = sources.open_source("vqjax_digits", split="test", data_dir=data_dir)
  assert (source.name, source.split, source.num_examples) == ("vqjax_digits", "test", 297)
  assert source.image_shape == (8, 8, 1) and source.num_classes == 10


def test_slices_of_splits_count(data_dir):
  builder = sources.get_builder("vqjax_digits", data_dir=data_dir)
  assert sources.num_examples(builder, "train[:10%]") == 150
  assert sources.num_examples(builder, "train+test") == 1797


def test_unknown_name_suggests_and_never_falls_back(tmp_path):
  with pytest.raises(ValueError, match=r"unknown dataset 'mnsit'.*did you mean 'mnist'"
                     r".*tfds.list_builders\(\).*catalogue"):
    sources.get_builder("mnsit", data_dir=str(tmp_path))


def test_not_prepared_names_data_dir_and_download(tmp_path):
  with pytest.raises(ValueError) as error:
    sources.get_builder("mnist", data_dir=str(tmp_path))
  message = str(error.value)
  assert "'mnist' version" in message and "not prepared" in message
  assert str(tmp_path / "mnist") in message and "download=True" in message


def test_not_prepared_points_at_the_versions_there(tmp_path):
  (tmp_path / "vqjax_digits" / "0.9.0").mkdir(parents=True)
  (tmp_path / "vqjax_digits" / "0.9.0" / "dataset_info.json").write_text("{}")
  with pytest.raises(ValueError, match=r"holds version\(s\) 0.9.0.*'vqjax_digits:0.9.0'.*"
                     r"no network needed"):
    sources.get_builder("vqjax_digits", data_dir=str(tmp_path))


def test_download_prepares_the_offline_dataset(tmp_path):
  builder = sources.get_builder("vqjax_digits", data_dir=str(tmp_path), download=True)
  assert builder.is_prepared()


def test_unknown_version_is_a_value_error(data_dir):
  with pytest.raises(ValueError, match=r"cannot be built.*9.9.9.*version"):
    sources.get_builder("vqjax_digits:9.9.9", data_dir=data_dir)


def test_unknown_split_lists_the_splits(data_dir):
  with pytest.raises(ValueError, match=r"unknown split 'validation'.*'train', 'test'"):
    sources.open_source("vqjax_digits", split="validation", data_dir=data_dir)


def test_dataset_of_the_wrong_type():
  with pytest.raises(ValueError, match="TFDS name .* or a tfds.core.DatasetBuilder"):
    sources.get_builder(3)


@pytest.mark.parametrize("drop_remainder, sizes", [(False, [149, 148]), (True, [148, 148])])
def test_processes_read_disjoint_slices(data_dir, drop_remainder, sizes):
  source = sources.open_source("vqjax_digits", split="test", data_dir=data_dir)
  slices = [
      [example["image"] for example in tfds.as_numpy(sources.read_examples(
          source, process_index=index, process_count=2, drop_remainder=drop_remainder))]
      for index in range(2)]
  assert [len(images) for images in slices] == sizes
  assert not set(slices[0]) & set(slices[1])  # encoded bytes: equal images encode equally


def test_reads_are_a_function_of_the_shuffle_seed(data_dir):
  source = sources.open_source("vqjax_digits", split="train", data_dir=data_dir)

  def labels(seed):
    ds = sources.read_examples(source, process_index=0, process_count=1, shuffle_seed=seed)
    return np.array([example["label"] for example in tfds.as_numpy(ds)])

  np.testing.assert_array_equal(labels(3), labels(3))
  np.testing.assert_array_equal(labels(None), labels(None))
