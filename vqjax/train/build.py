"""Models from config.model: the one place that maps config fields to model fields.

    model = build_model(config.model, axis_name="batch")

config.model holds `name` ('vqvae' or 'vqvae2'), the model's own fields (image_channels,
embedding_dim, hidden_channels, residual_channels, num_residual_layers,
downsample_factor, dtype as 'float32' or 'bfloat16') and `quantizer`: a `name` from
QUANTIZERS plus that layer's fields (codebook_size, dim, beta, ema_decay, ...). VQ-VAE-2
gets two quantizers built from the same fields. Models and layers never see the config.

    prior = build_prior(config.model, codebook_size=K, grid_shape=(h, w))

builds an autoregressive prior from its `name` (PRIORS) and fields; the tokenizer gives
the codebook size and grid shape, and num_classes=0 means unconditional for both kinds.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import flax.linen as nn
import jax.numpy as jnp

from vqjax import models
from vqjax import nn as vqnn

MODELS = {"vqvae": models.VQVAE, "vqvae2": models.VQVAE2}
QUANTIZERS = {
    "vq": vqnn.VectorQuantizer,
    "residual": vqnn.ResidualVectorQuantizer,
    "grouped": vqnn.GroupedVectorQuantizer,
    "fsq": vqnn.FSQ,
    "lfq": vqnn.LFQ,
    "gumbel": vqnn.GumbelQuantizer,
}
PRIORS = {"transformer": models.TransformerPrior, "pixelcnn": models.GatedPixelCNN}
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
_NOT_CONFIGURABLE = ("parent", "name", "axis_name", "param_dtype")


def build_model(model_config: Mapping[str, Any], *, axis_name: str | None = "batch") -> nn.Module:
  """The model config.model describes; its quantizers reduce over `axis_name`."""
  fields = _as_dict(model_config)
  model_name = fields.pop("name", "vqvae")
  if model_name not in MODELS:
    raise ValueError(f"unknown model {model_name!r} in config.model.name; choose one of "
                     f"{', '.join(map(repr, MODELS))}")
  quantizer_fields = fields.pop("quantizer", None)
  if quantizer_fields is None:
    raise ValueError("config.model has no 'quantizer'; add one, e.g. "
                     "dict(name='vq', codebook_size=512, dim=64)")
  dtype = _pop_dtype(fields)
  cls = MODELS[model_name]
  _check_fields(cls, fields, "config.model")
  if model_name == "vqvae":
    quantizers = {"quantizer": build_quantizer(quantizer_fields, axis_name=axis_name)}
  else:
    quantizers = {f"{level}_quantizer": build_quantizer(quantizer_fields, axis_name=axis_name)
                  for level in ("top", "bottom")}
  return cls(**quantizers, **fields, dtype=dtype)


def build_prior(model_config: Mapping[str, Any], *, codebook_size: int,
                grid_shape: tuple[int, int]) -> nn.Module:
  """The prior config.model describes, over grid_shape grids of codebook_size codes."""
  fields = _as_dict(model_config)
  name = fields.pop("name", "transformer")
  if name not in PRIORS:
    raise ValueError(f"unknown prior {name!r} in config.model.name; choose one of "
                     f"{', '.join(map(repr, PRIORS))}")
  dtype = _pop_dtype(fields)
  cls = PRIORS[name]
  if name == "transformer":
    fields.update(codebook_size=codebook_size, grid_shape=tuple(grid_shape))
  else:  # the PixelCNN is conditional when num_classes is not None
    fields.update(num_tokens=codebook_size, num_classes=fields.get("num_classes") or None)
  _check_fields(cls, fields, "config.model")
  return cls(**fields, dtype=dtype)


def _pop_dtype(fields: dict):
  """The compute dtype named by fields['dtype'] (removed from fields), float32 by default."""
  dtype = fields.pop("dtype", "float32")
  if dtype not in DTYPES:
    raise ValueError(f"unknown dtype {dtype!r} in config.model.dtype; choose one of "
                     f"{', '.join(map(repr, DTYPES))}")
  return DTYPES[dtype]


def build_quantizer(quantizer_config: Mapping[str, Any], *,
                    axis_name: str | None = "batch") -> nn.Module:
  """An unbound quantizer layer of vqjax.nn from its `name` and fields."""
  fields = _as_dict(quantizer_config)
  name = fields.pop("name", "vq")
  if name not in QUANTIZERS:
    raise ValueError(f"unknown quantizer {name!r} in config.model.quantizer.name; choose one "
                     f"of {', '.join(map(repr, QUANTIZERS))}")
  cls = QUANTIZERS[name]
  _check_fields(cls, fields, "config.model.quantizer")
  fields = {key: tuple(value) if isinstance(value, list) else value
            for key, value in fields.items()}
  return cls(**fields, axis_name=axis_name)


def quantizers_of(model: nn.Module) -> dict[str, nn.Module]:
  """The model's quantizer layers by metric prefix: {'': q} or {'top/': q, 'bottom/': q}."""
  if isinstance(model, models.VQVAE2):
    return {"top/": model.top_quantizer, "bottom/": model.bottom_quantizer}
  return {"": model.quantizer}


def token_grids(output) -> dict[str, Any]:
  """A model output's token grids, keyed like quantizers_of."""
  if isinstance(output, models.VQVAE2Output):
    return {"top/": output.top_indices, "bottom/": output.bottom_indices}
  return {"": output.indices}


def codebook_size(quantizer: nn.Module) -> int:
  """The number of codes one index of the quantizer can take."""
  if isinstance(quantizer, vqnn.FSQ):
    return math.prod(quantizer.levels)
  if isinstance(quantizer, vqnn.LFQ):
    return 2 ** quantizer.dim
  return quantizer.codebook_size


def _as_dict(config) -> dict[str, Any]:
  return dict(config.to_dict() if hasattr(config, "to_dict") else config)


def _check_fields(cls, fields: Mapping[str, Any], where: str) -> None:
  known = [f.name for f in dataclasses.fields(cls)
           if f.init and f.name not in _NOT_CONFIGURABLE and not f.name.endswith("quantizer")]
  unknown = sorted(set(fields) - set(known))
  if unknown:
    raise ValueError(f"{where} has unknown field(s) {', '.join(map(repr, unknown))} for "
                     f"{cls.__name__}; its fields are {', '.join(known)}")
