"""Quantizer layers by name, so that a config names a quantizer and nothing else changes.

    @register_quantizer("toy")
    class ToyQuantizer(nn.Module): ...

The config builder (vqjax.runner.build) builds `QUANTIZER_LAYERS[name](**fields,
axis_name=...)`, so a registered layer takes its config fields and an `axis_name` field,
and keeps the contract of `vqjax.nn.output`.
"""
from __future__ import annotations

from collections.abc import Callable

QUANTIZER_LAYERS: dict[str, type] = {}


def register_quantizer(name: str, layer_cls: type | None = None) -> type | Callable[[type], type]:
  """Registers layer_cls under name; without layer_cls, returns a class decorator."""
  if layer_cls is None:
    return lambda cls: register_quantizer(name, cls)
  if not isinstance(name, str) or not name:
    raise ValueError(f"quantizer name is {name!r}; use a non-empty string such as 'vq'")
  registered = QUANTIZER_LAYERS.get(name)
  if registered is not None and _qualified_name(registered) != _qualified_name(layer_cls):
    raise ValueError(f"the quantizer name {name!r} is already registered to "
                     f"{_qualified_name(registered)}; register {layer_cls.__name__} under "
                     "another name")
  QUANTIZER_LAYERS[name] = layer_cls
  return layer_cls


def _qualified_name(cls: type) -> str:
  return f"{cls.__module__}.{cls.__qualname__}"
