"""Tests for vqjax.models.pickled_weights: the one restricted unpickler refuses or stubs
every global it was not given, runs nothing, and reads torch files without torch."""
import io
import os
import pickle

import numpy as np
import pytest

import record_taming_reference
from vqjax.models import pickled_weights
from vqjax.models.pickled_weights import (NUMPY_GLOBALS, RestrictedUnpickler, StubObject,
                                          TorchTensor, open_torch_file)


class _RunsCommand:
  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return os.system, (f"touch {self.marker}",)


class _Custom:
  def __init__(self):
    self.lr = 0.5


def _load(obj, **kwargs):
  unpickler = RestrictedUnpickler(io.BytesIO(pickle.dumps(obj)), NUMPY_GLOBALS,
                                  what="a test file", **kwargs)
  return unpickler.load(), unpickler


def test_numpy_arrays_load():
  tree = {"a": np.arange(6, dtype=np.float32).reshape(2, 3)}
  loaded, _ = _load(tree)
  np.testing.assert_array_equal(loaded["a"], tree["a"])


def test_other_globals_are_refused_by_name(tmp_path):
  with pytest.raises(pickle.UnpicklingError, match=r"refusing to load global \w+\.system: a "
                     "test file holds no such object"):
    _load(_RunsCommand(tmp_path / "ran"))
  assert not (tmp_path / "ran").exists()


def test_stubbed_globals_keep_their_arguments_and_run_nothing(tmp_path):
  marker = tmp_path / "ran"
  loaded, unpickler = _load({"command": _RunsCommand(marker), "custom": _Custom()},
                            stub_unknown=True)
  assert not marker.exists()
  command, custom = loaded["command"], loaded["custom"]
  assert isinstance(command, StubObject) and command.args == (f"touch {marker}",)
  assert isinstance(custom, StubObject) and custom.state == {"lr": 0.5}
  assert any(name.endswith(".system") for name in unpickler.stubbed)
  assert any(name.endswith("._Custom") for name in unpickler.stubbed)


def test_reads_a_torch_file_lazily_and_only_inside_the_block():
  with open_torch_file(record_taming_reference.WRITTEN, what="a test file",
                       stub_unknown=True) as loaded:
    tensor = loaded.root["state_dict"]["transposed"]
    assert isinstance(tensor, TorchTensor)
    np.testing.assert_array_equal(tensor.numpy(),
                                  np.arange(12, dtype=np.float32).reshape(3, 4).T)
    assert "argparse.Namespace" in loaded.stubbed_globals
  with pytest.raises(ValueError, match="closed; read tensors inside open_torch_file"):
    tensor.numpy()


def test_a_torch_file_is_refused_without_stubs():
  with pytest.raises(pickle.UnpicklingError, match="refusing to load global "
                     "argparse.Namespace"):
    with open_torch_file(record_taming_reference.WRITTEN, what="a test file"):
      pass


def test_a_tensor_outside_its_storage_is_refused():
  storage = np.arange(4, dtype=np.float32)
  with pytest.raises(ValueError, match="does not fit its storage of 4 elements"):
    TorchTensor(lambda: storage, 2, (4,), (1,)).numpy()
  with pytest.raises(ValueError, match="does not fit"):
    TorchTensor(lambda: storage, 0, (2, 2), (-1, 1)).numpy()
  np.testing.assert_array_equal(TorchTensor(lambda: storage, 1, (3,), (1,)).numpy(),
                                [1, 2, 3])
  assert TorchTensor(lambda: storage, 0, (0, 5), (5, 1)).numpy().shape == (0, 5)


@pytest.mark.parametrize("content, message", [(b"not a zip", "not a torch zip file"),
                                              (None, "does not exist")])
def test_files_that_are_not_torch_files_are_named(tmp_path, content, message):
  path = tmp_path / "model.pt"
  if content is not None:
    path.write_bytes(content)
  with pytest.raises(ValueError, match=message):
    with open_torch_file(str(path), what="a test file"):
      pass


def test_the_storage_types_cover_tamings_dtypes():
  assert {"FloatStorage", "HalfStorage", "BFloat16Storage", "LongStorage"} <= set(
      pickled_weights._STORAGES)  # pylint: disable=protected-access
