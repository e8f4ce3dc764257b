"""Image folders: root/split/label/*.png as a dataset the pipelines read."""
import itertools

import numpy as np
import pytest
from PIL import Image

from vqjax.data import image_folder
from vqjax.data import pipeline
from vqjax.data import sources


@pytest.fixture
def root(tmp_path):
  rng = np.random.default_rng(0)
  sizes = {"train": 8, "test": 3}
  for split, count in sizes.items():
    for index in range(count):
      label = ("cat", "dog")[index % 2]
      folder = tmp_path / split / label
      folder.mkdir(parents=True, exist_ok=True)
      shape = (12 + index, 10 + 2 * index)  # sizes vary; some images are grey
      pixels = rng.integers(0, 256, shape + ((3,) if index % 3 else ()), dtype=np.uint8)
      Image.fromarray(pixels).save(folder / f"{index:03d}.png")
  (tmp_path / "train" / "cat" / "notes.txt").write_text("not an image")
  return tmp_path


def test_builder_sees_splits_and_labels(root):
  builder = image_folder.image_folder_builder(str(root))
  assert dict((name, split.num_examples) for name, split in builder.info.splits.items()) == {
      "test": 3, "train": 8}
  assert builder.info.features["label"].names == ["cat", "dog"]
  assert builder.info.features["image"].shape == (None, None, 3)


@pytest.mark.parametrize("channels", [1, 3])
def test_pipelines_read_the_folder(root, channels):
  builder = image_folder.image_folder_builder(str(root), channels=channels)
  train = pipeline.make_train_iterator(builder, batch_size=4, image_size=8, random_flip=True,
                                       random_crop=True, channels=channels)
  batch = next(train)
  assert batch["image"].shape == (4, 1, 8, 8, channels)
  assert -1 <= batch["image"].min() and batch["image"].max() <= 1
  assert set(np.unique(batch["label"])) <= {0, 1}
  evaluation = list(pipeline.make_eval_iterator(builder, batch_size=4, image_size=8))
  assert len(evaluation) == 1 and evaluation[0]["mask"].sum() == 3


def test_resume_from_a_folder(root):
  builder = image_folder.image_folder_builder(str(root))
  kwargs = dict(batch_size=4, image_size=6, random_flip=True, random_crop=True, seed=5)
  uninterrupted = list(itertools.islice(pipeline.make_train_iterator(builder, **kwargs), 5))
  resumed = pipeline.make_train_iterator(builder, start_step=3, **kwargs)
  for batch in uninterrupted[3:]:
    np.testing.assert_array_equal(batch["image"], next(resumed)["image"])


def test_varying_sizes_need_image_size(root):
  builder = image_folder.image_folder_builder(str(root))
  with pytest.raises(ValueError, match=r"varying size.*pass image_size"):
    pipeline.make_train_iterator(builder, batch_size=4)


def test_unknown_split_and_slices(root):
  builder = image_folder.image_folder_builder(str(root))
  with pytest.raises(ValueError, match=r"unknown split 'validation'.*'test', 'train'"):
    sources.open_source(builder, split="validation")
  with pytest.raises(ValueError, match=r"image folders take whole splits"):
    sources.open_source(builder, split="train[:50%]")


def test_layout_errors(tmp_path):
  with pytest.raises(ValueError, match="does not exist; expected the layout"):
    image_folder.image_folder_builder(str(tmp_path / "missing"))
  with pytest.raises(ValueError, match="has no split folders"):
    image_folder.image_folder_builder(str(tmp_path))
  (tmp_path / "train" / "cat").mkdir(parents=True)
  with pytest.raises(ValueError, match="has no label folders with images"):
    image_folder.image_folder_builder(str(tmp_path))
  with pytest.raises(ValueError, match="channels must be 1"):
    image_folder.image_folder_builder(str(tmp_path), channels=4)


def _truncate(path):
  path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_an_unreadable_image_is_named(root, suffix):
  bad = root / "train" / "dog" / f"broken{suffix}"
  Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(bad)
  _truncate(bad)
  builder = image_folder.image_folder_builder(str(root))
  batches = pipeline.make_eval_iterator(builder, batch_size=4, image_size=8, split="train")
  with pytest.raises(ValueError, match=rf"image {bad} in image folder .* cannot be decoded "
                                       r"\(.*\); replace or delete it.*skip_unreadable=True"):
    list(batches)


def test_skip_unreadable_leaves_them_out_and_counts_them(root, caplog):
  bad = [root / "train" / "cat" / "000.png", root / "test" / "dog" / "001.png"]
  for path in bad:
    _truncate(path)
  (root / "train" / "dog" / "empty.jpg").write_bytes(b"")
  with caplog.at_level("WARNING"):
    builder = image_folder.image_folder_builder(str(root), skip_unreadable=True)
  assert sorted(builder.skipped_images) == sorted(
      map(str, bad + [root / "train" / "dog" / "empty.jpg"]))
  assert any("skipped 3 unreadable image(s) of 12" in r.getMessage() for r in caplog.records)
  assert sources.open_source(builder, split="train").num_examples == 7
  train = pipeline.make_train_iterator(builder, batch_size=4, image_size=8)
  assert next(train)["image"].shape == (4, 1, 8, 8, 3)
  evaluation = list(pipeline.make_eval_iterator(builder, batch_size=4, image_size=8))
  assert evaluation[0]["mask"].sum() == 2
