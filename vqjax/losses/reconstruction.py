"""The reconstruction loss of every tokenizer step (VQ-VAE, VQ-VAE-2, VQGAN alike)."""
from __future__ import annotations

import jax
import jax.numpy as jnp

RECONSTRUCTION_LOSSES = ("l1", "l2")


def check_reconstruction_loss(kind: str) -> None:
  if kind not in RECONSTRUCTION_LOSSES:
    raise ValueError(f"unknown reconstruction loss {kind!r}; choose one of "
                     f"{', '.join(map(repr, RECONSTRUCTION_LOSSES))}")


def reconstruction_loss(reconstruction: jax.Array, images: jax.Array,
                        kind: str = "l2") -> jax.Array:
  """Mean absolute ('l1') or squared ('l2', the MSE) error per pixel, in float32."""
  check_reconstruction_loss(kind)
  diff = reconstruction.astype(jnp.float32) - images.astype(jnp.float32)
  return jnp.mean(jnp.abs(diff) if kind == "l1" else jnp.square(diff))
