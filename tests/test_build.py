"""Models from config.model: explicit fields, every quantizer, clear errors."""
import jax
import jax.numpy as jnp
import pytest

from vqjax import models
from vqjax import nn as vqnn
from vqjax.runner import build
from vqjax.models import tokenizers

BASE = dict(image_channels=1, embedding_dim=8, hidden_channels=16, residual_channels=8,
            num_residual_layers=1, downsample_factor=2)


def _config(**overrides):
  return {"name": "vqvae", **BASE, "quantizer": {"name": "vq", "codebook_size": 32, "dim": 8},
          **overrides}


def test_vqvae_with_its_fields_and_the_axis_name():
  model = build.build_model(_config(dtype="bfloat16"), axis_name="devices")
  assert isinstance(model, models.VQVAE)
  assert (model.hidden_channels, model.downsample_factor, model.dtype) == (16, 2, jnp.bfloat16)
  assert model.quantizer == vqnn.VectorQuantizer(32, 8, axis_name="devices")
  assert tokenizers.quantizers_of(model) == {"": model.quantizer}


def test_vqvae2_gets_two_quantizers_of_the_same_fields():
  model = build.build_model(_config(name="vqvae2", quantizer={
      "name": "vq", "codebook_size": 16, "dim": 8, "ema_decay": 0.99}), axis_name=None)
  assert isinstance(model, models.VQVAE2)
  assert model.top_quantizer == model.bottom_quantizer == vqnn.VectorQuantizer(
      16, 8, ema_decay=0.99)
  assert set(tokenizers.quantizers_of(model)) == {"top/", "bottom/"}
  images = jax.ShapeDtypeStruct((2, 8, 8, 1), jnp.float32)
  out = jax.eval_shape(lambda x: model.init_with_output(jax.random.key(0), x, train=False)[0],
                       images)
  assert {k: v.shape for k, v in tokenizers.token_grids(out).items()} == {
      "top/": (2, 2, 2), "bottom/": (2, 4, 4)}


@pytest.mark.parametrize("quantizer,embedding_dim,size", [
    ({"name": "fsq", "levels": [8, 5, 5]}, 3, 200),  # lists from JSON become tuples
    ({"name": "lfq", "dim": 6}, 6, 64),
    ({"name": "residual", "levels": 2, "codebook_size": 16, "dim": 8}, 8, 16),
    ({"name": "grouped", "groups": 2, "codebook_size": 16, "dim": 8}, 8, 16),
    ({"name": "gumbel", "codebook_size": 16, "dim": 8}, 16, 16),
])
def test_every_quantizer_and_its_codebook_size(quantizer, embedding_dim, size):
  model = build.build_model(_config(quantizer=quantizer, embedding_dim=embedding_dim))
  assert tokenizers.codebook_size(model.quantizer) == size


@pytest.mark.parametrize("overrides,message", [
    (dict(name="vqvae3"), "unknown model 'vqvae3' in config.model.name"),
    (dict(quantizer={"name": "kmeans"}), "unknown quantizer 'kmeans'"),
    (dict(quantizer=None), "config.model has no 'quantizer'"),
    (dict(dtype="float16"), "unknown dtype 'float16'"),
    (dict(hidden=4), r"config.model has unknown field\(s\) 'hidden' for VQVAE; its fields"),
    (dict(quantizer={"name": "vq", "codebook_size": 8, "dim": 8, "decay": 0.9}),
     r"unknown field\(s\) 'decay' for VectorQuantizer; its fields are codebook_size, dim"),
])
def test_errors_name_the_field(overrides, message):
  with pytest.raises(ValueError, match=message):
    build.build_model(_config(**overrides))


def test_vqgan_from_its_fields_lists_as_tuples():
  model = build.build_model(dict(
      name="vqgan", image_channels=1, embedding_dim=8, channels=16,
      channel_multipliers=[1, 2], attention_resolutions=[4], num_res_blocks=1, z_channels=8,
      dtype="bfloat16", quantizer={"name": "vq", "codebook_size": 16, "dim": 8,
                                   "metric": "cosine"}))
  assert isinstance(model, models.VQGAN) and model.channel_multipliers == (1, 2)
  assert model.dtype == jnp.bfloat16 and model.quantizer.metric == "cosine"
  assert model.quantizer.axis_name == "batch" and model.downsample_factor == 2


def test_discriminator_from_its_fields():
  disc = build.build_discriminator(dict(name="patchgan", channels=8, num_layers=2,
                                        norm="group", dtype="bfloat16"), axis_name="batch")
  assert isinstance(disc, models.PatchGANDiscriminator)
  assert (disc.channels, disc.num_layers, disc.norm, disc.axis_name) == (8, 2, "group", "batch")
  assert disc.dtype == jnp.bfloat16


@pytest.mark.parametrize("fields,message", [
    (dict(name="stylegan"), "unknown discriminator 'stylegan' in config.discriminator.name"),
    (dict(depth=3), r"config.discriminator has unknown field\(s\) 'depth'"),
    (dict(dtype="float16"), "unknown dtype 'float16' in config.discriminator.dtype"),
])
def test_discriminator_errors_name_the_field(fields, message):
  with pytest.raises(ValueError, match=message):
    build.build_discriminator(fields)


@pytest.mark.parametrize("name,cls", [("transformer", models.TransformerPrior),
                                      ("pixelcnn", models.GatedPixelCNN)])
def test_both_priors_get_the_same_fields(name, cls):
  prior = build.build_prior({"name": name, "num_layers": 2, "num_classes": 0,
                             "dtype": "bfloat16"}, codebook_size=16, grid_shape=[4, 2])
  assert isinstance(prior, cls)
  assert (prior.codebook_size, prior.grid_shape, prior.num_classes,
          prior.condition_codebook_size, prior.dtype) == (16, (4, 2), 0, 0, jnp.bfloat16)
  conditional = build.build_prior({"name": name, "num_classes": 10}, codebook_size=16,
                                  grid_shape=(4, 4))
  assert conditional.num_classes == 10


def test_pixelcnn_bottom_prior_is_refused_and_unknown_prior_fields_named():
  with pytest.raises(ValueError, match="set config.model.name='transformer'"):
    build.build_prior({"name": "pixelcnn"}, codebook_size=16, grid_shape=(4, 4),
                      condition_codebook_size=8)
  bottom = build.build_prior({"name": "transformer"}, codebook_size=16, grid_shape=(4, 4),
                             condition_codebook_size=8)
  assert bottom.condition_codebook_size == 8
  with pytest.raises(ValueError, match="unknown field.*'num_tokens'"):
    build.build_prior({"name": "pixelcnn", "num_tokens": 16}, codebook_size=16,
                      grid_shape=(4, 4))
