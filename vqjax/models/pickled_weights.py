"""Pickled weights read without running them, and torch files read without torch: the one
restricted unpickler of vqjax (LPIPS, FID Inception and taming-transformers weights).

    RestrictedUnpickler(file, allowed, what=...)   rebuilds only the globals in `allowed`;
                          any other is refused (pickle.UnpicklingError naming it), or with
                          stub_unknown=True rebuilt as an inert StubObject that only keeps
                          its arguments: nothing it names is imported or called
    NUMPY_GLOBALS         what a pickle of NumPy arrays needs
    open_torch_file(path, what=...)   a torch.save (or TorchScript) zip as a TorchFile:
                          data.pkl's object with the tensors as TorchTensors, whose bytes
                          are read on demand
                          (TorchTensor.numpy()), so a Lightning .ckpt's optimizer state is
                          never read when only its state_dict is wanted

Only the zip format of torch >= 1.6 is read; an older file must be re-saved once with torch
(`torch.save(torch.load(path), new_path)`).
"""
from __future__ import annotations

import builtins
import collections
import contextlib
import io
import os
import pickle
import zipfile
from typing import Any, Callable, Iterator, Mapping, NamedTuple

import ml_dtypes
import numpy as np

# numpy.core became numpy._core in NumPy 2; pickles name either.
_NUMPY_CORE = getattr(np, "_core", None) or np.core
NUMPY_GLOBALS = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
  NUMPY_GLOBALS[(_module, "_reconstruct")] = _NUMPY_CORE.multiarray._reconstruct
  NUMPY_GLOBALS[(_module, "scalar")] = _NUMPY_CORE.multiarray.scalar

# Plain containers and values; nothing here runs code of the file's choosing.
_SAFE_BUILTINS = {(module, name): getattr(builtins, name)
                  for module in ("builtins", "__builtin__")
                  for name in ("set", "frozenset", "dict", "list", "tuple", "int", "float",
                               "bool", "str", "bytes", "complex", "slice")}


class StubObject:
  """An object of a global the unpickler would not load: its name and whatever the pickle
  gave it (arguments, state, items), never run. `global_name` is 'module.name'."""
  global_name = "?"

  def __init__(self, *args, **kwargs):
    self.args, self.kwargs, self.state, self.items = args, kwargs, None, []

  def __new__(cls, *args, **kwargs):  # NEWOBJ calls cls.__new__(cls, *args)
    obj = super().__new__(cls)
    obj.args, obj.kwargs, obj.state, obj.items = args, kwargs, None, []
    return obj

  def __setstate__(self, state):
    self.state = state

  def __setitem__(self, key, value):
    self.items.append((key, value))

  def append(self, value):
    self.items.append(value)

  def extend(self, values):
    self.items.extend(values)

  def __repr__(self):
    return f"<not loaded: {self.global_name}>"


class RestrictedUnpickler(pickle.Unpickler):
  """An unpickler that rebuilds only the globals of `allowed` ({(module, name): object});
  `resolve(module, name)` may allow more (None: not allowed). Any other global raises
  pickle.UnpicklingError naming it and `what` the file should be, or, with stub_unknown,
  becomes a StubObject subclass."""

  def __init__(self, file, allowed: Mapping[tuple[str, str], Any], *, what: str,
               resolve: Callable[[str, str], Any] | None = None, stub_unknown: bool = False):
    super().__init__(file)
    self._allowed, self._what, self._resolve = allowed, what, resolve
    self._stub_unknown = stub_unknown
    self.stubbed: set[str] = set()  # 'module.name' of every global rebuilt as a stub

  def find_class(self, module, name):
    if (module, name) in self._allowed:
      return self._allowed[(module, name)]
    found = self._resolve(module, name) if self._resolve else None
    if found is not None:
      return found
    if self._stub_unknown:
      self.stubbed.add(f"{module}.{name}")
      return type(name, (StubObject,), {"global_name": f"{module}.{name}"})
    raise pickle.UnpicklingError(
        f"refusing to load global {module}.{name}: {self._what} holds no such object, so this "
        "file is not one (or was tampered with)")


class _Storage(NamedTuple):
  """A torch storage type from a pickle: the dtype of its elements (None: unknown)."""
  dtype: Any


_STORAGES = {"FloatStorage": np.float32, "DoubleStorage": np.float64,
             "HalfStorage": np.float16, "BFloat16Storage": ml_dtypes.bfloat16,
             "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
             "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}


class TorchTensor(NamedTuple):
  """A tensor of a torch file, its bytes not yet read: numpy() reads them (inside the
  open_torch_file block)."""
  read: Callable[[], np.ndarray]  # the whole storage
  offset: int
  shape: tuple[int, ...]
  stride: tuple[int, ...]

  def numpy(self) -> np.ndarray:
    storage = self.read()
    itemsize = storage.itemsize
    # as_strided trusts its arguments: a crafted file must not read outside the storage
    last = self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride) if n > 0)
    if (self.offset < 0 or min(self.shape, default=0) < 0 or min(self.stride, default=0) < 0
        or (all(n > 0 for n in self.shape) and last >= storage.size)):
      raise ValueError(f"a tensor of shape {self.shape}, stride {self.stride} at offset "
                       f"{self.offset} does not fit its storage of {storage.size} elements; "
                       "the file is damaged or crafted")
    return np.lib.stride_tricks.as_strided(
        storage[self.offset:], self.shape, tuple(s * itemsize for s in self.stride)).copy()


def _rebuild_tensor(storage, offset, size, stride, *unused):
  return TorchTensor(storage, offset, tuple(size), tuple(stride))


def _rebuild_parameter(data, *unused):
  return data


_TORCH_GLOBALS = {
    **{("torch", name): _Storage(dtype) for name, dtype in _STORAGES.items()},
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
}


class _TorchUnpickler(RestrictedUnpickler):
  def __init__(self, file, archive: zipfile.ZipFile, prefix: str, source: str, **kwargs):
    super().__init__(file, {**_SAFE_BUILTINS, **_TORCH_GLOBALS}, **kwargs)
    self._archive, self._prefix, self._source = archive, prefix, source
    self._closed = False

  def persistent_load(self, pid):
    if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
      raise pickle.UnpicklingError(f"{self._source}: unexpected persistent id {pid!r}; "
                                   "this is not a torch file")
    _, storage_type, key, _, numel = pid
    dtype = storage_type.dtype if isinstance(storage_type, _Storage) else None
    name = f"{self._prefix}data/{key}"

    def read():
      if dtype is None:
        raise ValueError(f"{self._source}: tensor storage {key} has the unknown type "
                         f"{storage_type!r}, which vqjax cannot read")
      if self._closed:
        raise ValueError(f"{self._source} is closed; read tensors inside open_torch_file")
      return np.frombuffer(self._archive.read(name), np.dtype(dtype).newbyteorder("<"),
                           count=numel)
    return read


class TorchFile(NamedTuple):
  root: Any                        # what data.pkl pickles, tensors as TorchTensors
  stubbed_globals: frozenset[str]  # 'module.name' of every global left a StubObject


@contextlib.contextmanager
def open_torch_file(path: str, *, what: str, stub_unknown: bool = False,
                    resolve: Callable[[str, str], Any] | None = None,
                    hint: str = "") -> Iterator[TorchFile]:
  """Yields the TorchFile of a torch.save zip (or a TorchScript file): its tensors are
  TorchTensors, readable until the block ends. Globals other than tensors, storages,
  OrderedDict and plain builtins are refused (or, stub_unknown, stubbed); resolve may
  allow more. what: the file's kind, for errors; hint: what to do about a wrong file."""
  path = os.fspath(path)
  try:
    archive = zipfile.ZipFile(path)
  except (zipfile.BadZipFile, IsADirectoryError) as error:
    raise ValueError(f"{path} is not a torch zip file ({error}); pass {what} written by "
                     "torch.save with torch >= 1.6 (re-save an older file once with "
                     f"torch.save(torch.load(path), new_path)){hint}") from None
  except FileNotFoundError:
    raise ValueError(f"{path} does not exist; pass {what}{hint}") from None
  with archive:
    pickles = sorted((n for n in archive.namelist() if n.endswith("data.pkl")), key=len)
    if not pickles:
      raise ValueError(f"{path} holds no data.pkl; it is a zip but not a torch file{hint}")
    prefix = pickles[0][:-len("data.pkl")]
    byteorder = f"{prefix}byteorder"
    if byteorder in archive.namelist() and archive.read(byteorder).strip() != b"little":
      raise ValueError(f"{path} was saved on a big-endian machine; re-save it with torch on "
                       "a little-endian one")
    unpickler = _TorchUnpickler(io.BytesIO(archive.read(pickles[0])), archive, prefix, path,
                                what=what, stub_unknown=stub_unknown, resolve=resolve)
    try:
      root = unpickler.load()
      yield TorchFile(root, frozenset(unpickler.stubbed))
    finally:
      unpickler._closed = True  # pylint: disable=protected-access
