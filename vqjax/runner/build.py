"""Models from config.model: the one place that maps config fields to model fields.

    model = build_model(config.model, axis_name="batch")

config.model holds `name` ('vqvae', 'vqvae2' or 'vqgan'), the model's own fields (e.g.
image_channels, embedding_dim, hidden_channels, downsample_factor; VQGAN: channels,
channel_multipliers, attention_resolutions, ...; dtype as 'float32' or 'bfloat16') and
`quantizer`: a `name` from QUANTIZERS (vqjax.nn.QUANTIZER_LAYERS: every layer registered
with `vqjax.nn.register_quantizer`) plus that layer's fields (codebook_size, dim, beta,
ema_decay, ...). VQ-VAE-2 gets two quantizers built from the same fields. Models and
layers never see the config.

    discriminator = build_discriminator(config.discriminator, axis_name="batch")

builds a VQGAN's discriminator (DISCRIMINATORS) from its fields.

    prior = build_prior(config.model, codebook_size=K, grid_shape=(h, w))

builds a prior (transformer, pixelcnn or maskgit) from its `name` (PRIORS) and fields; the tokenizer gives
the codebook size and grid shape (and, for a VQ-VAE-2 bottom prior, the top codebook size
as condition_codebook_size), and num_classes=0 means unconditional for both kinds.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import flax.linen as nn
import jax.numpy as jnp

from vqjax import models
from vqjax import nn as vqnn
from vqjax.train.fields import check_known_fields

MODELS = {"vqvae": models.VQVAE, "vqvae2": models.VQVAE2, "vqgan": models.VQGAN}
DISCRIMINATORS = {"patchgan": models.PatchGANDiscriminator}
QUANTIZERS = vqnn.QUANTIZER_LAYERS  # the registry itself: layers registered later appear
PRIORS = {"transformer": models.TransformerPrior, "pixelcnn": models.GatedPixelCNN,
          "maskgit": models.MaskGITPrior}
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
  fields = _tuples(fields)
  if model_name != "vqvae2":
    quantizers = {"quantizer": build_quantizer(quantizer_fields, axis_name=axis_name)}
  else:
    quantizers = {f"{level}_quantizer": build_quantizer(quantizer_fields, axis_name=axis_name)
                  for level in ("top", "bottom")}
  return cls(**quantizers, **fields, dtype=dtype)


def build_prior(model_config: Mapping[str, Any], *, codebook_size: int,
                grid_shape: tuple[int, int], condition_codebook_size: int = 0) -> nn.Module:
  """The prior config.model describes, over grid_shape grids of codebook_size codes;
  condition_codebook_size > 0: a VQ-VAE-2 bottom prior, conditioned on a top grid of that
  many codes (the transformer and MaskGIT). Every prior takes the same fields for these,
  num_classes (0: unconditional) and label_dropout_rate (guidance's null class)."""
  fields = _as_dict(model_config)
  name = fields.pop("name", "transformer")
  if name not in PRIORS:
    raise ValueError(f"unknown prior {name!r} in config.model.name; choose one of "
                     f"{', '.join(map(repr, PRIORS))}")
  if name == "pixelcnn" and condition_codebook_size:
    raise ValueError("the 'pixelcnn' prior takes no top-grid condition, so it cannot be a "
                     "VQ-VAE-2 bottom prior; set config.model.name='transformer' (or "
                     "config.level='top')")
  dtype = _pop_dtype(fields)
  cls = PRIORS[name]
  fields.update(codebook_size=codebook_size, grid_shape=tuple(grid_shape),
                condition_codebook_size=condition_codebook_size)
  _check_fields(cls, fields, "config.model")
  return cls(**fields, dtype=dtype)


def _pop_dtype(fields: dict, where: str = "config.model.dtype"):
  """The compute dtype named by fields['dtype'] (removed from fields), float32 by default."""
  dtype = fields.pop("dtype", "float32")
  if dtype not in DTYPES:
    raise ValueError(f"unknown dtype {dtype!r} in {where}; choose one of "
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
  return cls(**_tuples(fields), axis_name=axis_name)


def build_discriminator(discriminator_config: Mapping[str, Any], *,
                        axis_name: str | None = "batch") -> nn.Module:
  """The VQGAN discriminator config.discriminator describes (`name` from DISCRIMINATORS,
  its fields, dtype); batch norm statistics are synchronized over axis_name."""
  fields = _as_dict(discriminator_config)
  name = fields.pop("name", "patchgan")
  if name not in DISCRIMINATORS:
    raise ValueError(f"unknown discriminator {name!r} in config.discriminator.name; choose "
                     f"one of {', '.join(map(repr, DISCRIMINATORS))}")
  dtype = _pop_dtype(fields, where="config.discriminator.dtype")
  cls = DISCRIMINATORS[name]
  _check_fields(cls, fields, "config.discriminator")
  return cls(**_tuples(fields), dtype=dtype, axis_name=axis_name)


def _tuples(fields: Mapping[str, Any]) -> dict[str, Any]:
  """Fields with lists (as configs hold them after JSON) made tuples, as modules need."""
  return {key: tuple(value) if isinstance(value, list) else value
          for key, value in fields.items()}


def _as_dict(config) -> dict[str, Any]:
  return dict(config.to_dict() if hasattr(config, "to_dict") else config)


def _check_fields(cls, fields: Mapping[str, Any], where: str) -> None:
  known = [f.name for f in dataclasses.fields(cls)
           if f.init and f.name not in _NOT_CONFIGURABLE and not f.name.endswith("quantizer")]
  check_known_fields(fields, known, where=where, owner=cls.__name__)
