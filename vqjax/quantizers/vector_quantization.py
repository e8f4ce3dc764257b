"""Vector quantization: nearest code, gradient estimators and the two VQ-VAE losses.

    z_q = codebook[argmin_i |z - e_i|^2]
    codebook_loss   = mean((sg(z) - z_q)^2)          moves only the codebook
    commitment_loss = beta * mean((z - sg(z_q))^2)   moves only the encoder output
    quantized       = z + sg(z_q - z)                straight-through (or the rotation trick)

The family's verbs, shared by every quantizer family of `vqjax.quantizers`: `quantize`,
`indices_to_codes` (also named `lookup`) and `codebook_metrics`.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from vqjax.quantizers import search
from vqjax.quantizers.metrics import codebook_metrics  # the family's metrics verb
from vqjax.quantizers import _validation as validation

ESTIMATORS = ("straight_through", "rotation")

sg = jax.lax.stop_gradient


class VQOutput(NamedTuple):
  quantized: jax.Array        # [..., dim], z's dtype; carries the estimator's gradient to z
  indices: jax.Array          # [...] int32
  codebook_loss: jax.Array    # scalar float32
  commitment_loss: jax.Array  # scalar float32, already multiplied by beta


def indices_to_codes(indices: jax.Array, codebook: jax.Array, *,
                     metric: str = "l2") -> jax.Array:
  """Code vectors for integer indices [...] -> [..., dim] (unit vectors for metric='cosine')."""
  validation.check_indices(indices)
  validation.check_codebook(codebook)
  validation.check_choice(metric, search.METRICS, "metric")
  codes = jnp.take(codebook, indices, axis=0)
  return search.l2_normalize(codes) if metric == "cosine" else codes


lookup = indices_to_codes


def straight_through(z: jax.Array, z_q: jax.Array) -> jax.Array:
  """Forward value z_q, gradient the identity on z: z + sg(z_q - z)."""
  return z + sg(z_q - z)


def rotation_trick(z: jax.Array, z_q: jax.Array, eps: float = 1e-12) -> jax.Array:
  """Forward value z_q; the gradient to z passes through the rotation and rescaling that
  carries z onto z_q, treated as constants (Fifty et al. 2024, "Restructuring Vector
  Quantization with the Rotation Trick").

  With u = z/|z|, q = z_q/|z_q| and w = (u + q)/|u + q|, the rotation applied to z is
  R z = z - 2 (z.w) w + 2 (z.u) q, and the output is sg(|z_q| / |z|) R z.
  """
  def norm(x):
    return jnp.sqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), eps))

  z_norm, q_norm = sg(norm(z)), sg(norm(z_q))
  u, q = sg(z / z_norm), sg(z_q / q_norm)
  w = sg(search.l2_normalize(u + q))
  rotated = (z - 2.0 * jnp.sum(z * w, axis=-1, keepdims=True) * w
             + 2.0 * jnp.sum(z * u, axis=-1, keepdims=True) * q)
  return rotated * (q_norm / z_norm)


def check_beta(beta: float) -> None:
  if beta < 0:
    raise ValueError(f"beta is {beta}; the commitment weight must be >= 0 (the paper uses 0.25)")


def vq_losses(z: jax.Array, z_q: jax.Array, beta: float = 0.25) -> tuple[jax.Array, jax.Array]:
  """(codebook_loss, commitment_loss) in float32; beta weighs the commitment (encoder) term."""
  check_beta(beta)
  z, z_q = z.astype(jnp.float32), z_q.astype(jnp.float32)
  return jnp.mean(jnp.square(sg(z) - z_q)), beta * jnp.mean(jnp.square(z - sg(z_q)))


def quantize(z: jax.Array, codebook: jax.Array, *, beta: float = 0.25,
             metric: str = "l2", estimator: str = "straight_through",
             block_size: int = 256) -> VQOutput:
  """Replaces every vector of z [..., dim] by its nearest code.

  metric="cosine" l2-normalizes z and the codes before the search, the losses and the
  output (ViT-VQGAN's l2-normalized codes). The codebook gets gradients from
  `codebook_loss`; for an EMA codebook ignore that term and call `ema.update` instead.
  """
  validation.check_choice(estimator, ESTIMATORS, "estimator")
  check_beta(beta)
  indices = search.nearest_code_indices(z, codebook, metric=metric, block_size=block_size)
  if metric == "cosine":
    z = search.l2_normalize(z.astype(jnp.float32)).astype(z.dtype)
  z_q = indices_to_codes(indices, codebook, metric=metric)
  codebook_loss, commitment_loss = vq_losses(z, z_q, beta)
  z_q = z_q.astype(z.dtype)
  estimate = straight_through if estimator == "straight_through" else rotation_trick
  return VQOutput(estimate(z, z_q), indices, codebook_loss, commitment_loss)
