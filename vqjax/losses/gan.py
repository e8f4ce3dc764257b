"""Adversarial losses of VQGAN as pure functions of discriminator logits.

    hinge                   D: mean(relu(1 - real)) + mean(relu(1 + fake))   G: -mean(fake)
    non_saturating          D: softplus(-real) + softplus(fake)             G: softplus(-fake)
    lecam_regularization    Tseng et al. 2021: keeps D's logits near the EMAs of the other side
    r1_penalty              Mescheder et al. 2018: squared input-gradient norm of D on reals
    adaptive_weight         Esser et al. 2021: ||grad rec|| / (||grad gan|| + 1e-4), clipped

Each D and G loss is a mean over every logit (a PatchGAN gives one per patch), so it does
not depend on how the batch is split over devices: average over the devices' equal shares.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from vqjax import collectives

GAN_LOSSES = ("hinge", "non_saturating")


def check_gan_loss(name: str) -> None:
  if name not in GAN_LOSSES:
    raise ValueError(f"unknown GAN loss {name!r}; choose one of "
                     f"{', '.join(map(repr, GAN_LOSSES))}")


def discriminator_loss(real_logits, fake_logits, kind: str = "hinge"):
  """The discriminator's loss (to minimize) on logits of real and generated images."""
  check_gan_loss(kind)
  real, fake = _float32(real_logits), _float32(fake_logits)
  if kind == "hinge":
    return 0.5 * (jnp.mean(jax.nn.relu(1.0 - real)) + jnp.mean(jax.nn.relu(1.0 + fake)))
  return 0.5 * (jnp.mean(jax.nn.softplus(-real)) + jnp.mean(jax.nn.softplus(fake)))


def generator_loss(fake_logits, kind: str = "hinge"):
  """The generator's adversarial loss on the discriminator's logits of its images."""
  check_gan_loss(kind)
  fake = _float32(fake_logits)
  if kind == "hinge":
    return -jnp.mean(fake)
  return jnp.mean(jax.nn.softplus(-fake))


class LeCamEMA(NamedTuple):
  """Exponential moving averages of the discriminator's mean logit on reals and fakes."""
  real: jax.Array  # float32 scalar
  fake: jax.Array  # float32 scalar


def init_lecam_ema() -> LeCamEMA:
  return LeCamEMA(jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32))


def update_lecam_ema(ema: LeCamEMA, real_logits, fake_logits, *, decay: float = 0.99,
                     axis_name: str | None = None) -> LeCamEMA:
  """The EMAs moved toward this step's mean logits (means over the global batch)."""
  means = jnp.stack([jnp.mean(_float32(real_logits)), jnp.mean(_float32(fake_logits))])
  means = collectives.pmean(means, axis_name)
  means = jax.lax.stop_gradient(means)
  return LeCamEMA(decay * ema.real + (1.0 - decay) * means[0],
                  decay * ema.fake + (1.0 - decay) * means[1])


def lecam_regularization(real_logits, fake_logits, ema: LeCamEMA):
  """mean(relu(real - ema_fake)^2) + mean(relu(ema_real - fake)^2), the EMAs held fixed."""
  real, fake = _float32(real_logits), _float32(fake_logits)
  return (jnp.mean(jnp.square(jax.nn.relu(real - ema.fake)))
          + jnp.mean(jnp.square(jax.nn.relu(ema.real - fake))))


def r1_penalty(logits_fn: Callable, real_images):
  """The mean over images of ||d sum(logits_fn(x)) / dx||^2 at the real images x.

  logits_fn maps images [B, H, W, C] to logits with a leading batch axis in which image i
  only affects row i (true of a discriminator without batch statistics, or with them
  frozen), so the gradient of the sum gives every image's own input gradient at once.
  Multiply by gamma / 2 for the usual R1 weight.
  """
  grads = jax.grad(lambda x: jnp.sum(_float32(logits_fn(x))))(real_images)
  return jnp.mean(jnp.sum(jnp.square(grads.astype(jnp.float32)),
                          axis=tuple(range(1, grads.ndim))))


def adaptive_weight(reconstruction_grads, gan_grads, *, max_weight: float = 1e4,
                    epsilon: float = 1e-4):
  """||reconstruction_grads|| / (||gan_grads|| + epsilon), clipped to [0, max_weight].

  The gradients of the reconstruction loss and of the generator's GAN loss with respect
  to the decoder's last layer (any pytrees of the same structure). The result is held
  fixed (stop_gradient): it scales the GAN term, it is not optimized.
  """
  weight = global_norm(reconstruction_grads) / (global_norm(gan_grads) + epsilon)
  return jax.lax.stop_gradient(jnp.clip(weight, 0.0, max_weight))


def global_norm(tree) -> jax.Array:
  """The l2 norm of all leaves of tree together, in float32 (optax.tree.norm)."""
  return optax.tree.norm(jax.tree.map(lambda leaf: leaf.astype(jnp.float32), tree))


def _float32(x):
  return jnp.asarray(x).astype(jnp.float32)
