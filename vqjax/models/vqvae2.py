"""VQ-VAE-2 (Razavi et al. 2019, "Generating Diverse High-Fidelity Images with VQ-VAE-2").

Two levels of codes, bottom at 1/f and top at 1/(2f) of the input (f = downsample_factor,
4 in the paper):

    bottom features = Encoder_f(images)
    top codes       = top_quantizer(1x1 conv(Encoder_2(bottom features)))
    bottom codes    = bottom_quantizer(1x1 conv(concat(bottom features, Decoder_2(top codes))))
    reconstruction  = Decoder_f(concat(4x4 stride-2 transposed conv(top codes), bottom codes))

The top codes condition the bottom quantizer, and the decoder reads both. Both quantizers
take embedding_dim channels; any layer of `vqjax.nn` plugs in, as in `vqjax.models.vqvae`
(float32 search, float32 reconstruction, the same loss and state conventions).
Loss terms and metrics carry the prefixes 'top/' and 'bottom/'.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.typing import Dtype

from vqjax.models.layers import (Decoder, Encoder, check_architecture,
                                 check_downsample_factor, check_images)
from vqjax.models.transposed_convolution import ConvTranspose
from vqjax.models.vqvae import check_quantizer, quantizer_terms, total_loss
from vqjax.nn import VectorQuantizer


class VQVAE2Output(NamedTuple):
  reconstruction: jax.Array   # float32 [B, H, W, image_channels]
  quantizer_loss: jax.Array   # float32 scalar, the sum of quantizer_losses
  quantizer_losses: dict      # 'top/...' and 'bottom/...' -> float32 scalar
  top_indices: jax.Array      # int32 [B, H / 2f, W / 2f] (residual: [..., levels])
  bottom_indices: jax.Array   # int32 [B, H / f, W / f]
  metrics: dict               # 'top/...' and 'bottom/...' usage metrics and diagnostics


class VQVAE2(nn.Module):
  """Two-level VQ-VAE over images [B, H, W, image_channels], H and W divisible by
  2 * downsample_factor.

  `__call__(images, *, train)` -> VQVAE2Output; `encode(images)` -> (top_indices,
  bottom_indices); `decode_indices(top_indices, bottom_indices)` -> float32 images.
  """
  top_quantizer: nn.Module
  bottom_quantizer: nn.Module
  embedding_dim: int = 64
  image_channels: int = 3
  hidden_channels: int = 128
  residual_channels: int = 32
  num_residual_layers: int = 2
  downsample_factor: int = 4
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def setup(self):
    check_architecture(hidden_channels=self.hidden_channels,
                       residual_channels=self.residual_channels,
                       num_residual_layers=self.num_residual_layers)
    check_downsample_factor(self.downsample_factor)
    check_quantizer(self.top_quantizer, self.embedding_dim, "top_quantizer")
    check_quantizer(self.bottom_quantizer, self.embedding_dim, "bottom_quantizer")
    precision = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    stack = dict(hidden_channels=self.hidden_channels, residual_channels=self.residual_channels,
                 num_residual_layers=self.num_residual_layers, **precision)
    self.bottom_encoder = Encoder(downsample_factor=self.downsample_factor, **stack)
    self.top_encoder = Encoder(downsample_factor=2, **stack)
    self.top_pre_quantization = nn.Conv(self.embedding_dim, (1, 1), **precision)
    self.top_decoder = Decoder(self.embedding_dim, upsample_factor=2, **stack)
    self.bottom_pre_quantization = nn.Conv(self.embedding_dim, (1, 1), **precision)
    self.top_upsample = ConvTranspose(self.embedding_dim, (4, 4), (2, 2), "SAME", **precision)
    self.decoder = Decoder(self.image_channels, upsample_factor=self.downsample_factor,
                           **stack)

  def _quantize(self, images, train: bool):
    check_images(images, image_channels=self.image_channels, factor=2 * self.downsample_factor)
    bottom_features = self.bottom_encoder(images)
    z_top = self.top_pre_quantization(self.top_encoder(bottom_features))
    top = self.top_quantizer(z_top.astype(jnp.float32), train=train)  # float32 search
    conditioned = jnp.concatenate(
        [bottom_features, self.top_decoder(top.quantized).astype(bottom_features.dtype)], -1)
    z_bottom = self.bottom_pre_quantization(conditioned)
    return top, self.bottom_quantizer(z_bottom.astype(jnp.float32), train=train)

  def _decode(self, top_codes, bottom_codes):
    upsampled = self.top_upsample(top_codes)
    codes = jnp.concatenate([upsampled, bottom_codes.astype(upsampled.dtype)], -1)
    return self.decoder(codes).astype(jnp.float32)

  def __call__(self, images, *, train: bool) -> VQVAE2Output:
    top, bottom = self._quantize(images, train)
    top_losses, top_metrics = quantizer_terms(top, "top/")
    bottom_losses, bottom_metrics = quantizer_terms(bottom, "bottom/")
    losses = {**top_losses, **bottom_losses}
    return VQVAE2Output(self._decode(top.quantized, bottom.quantized), total_loss(losses),
                        losses, top.indices, bottom.indices, {**top_metrics, **bottom_metrics})

  def encode(self, images):
    """Images -> (top_indices [B, H / 2f, W / 2f], bottom_indices [B, H / f, W / f])."""
    top, bottom = self._quantize(images, train=False)
    return top.indices, bottom.indices

  def decode_indices(self, top_indices, bottom_indices):
    """Both token grids -> float32 images [B, H, W, image_channels]."""
    top_grid, bottom_grid = tuple(top_indices.shape[1:3]), tuple(bottom_indices.shape[1:3])
    if tuple(2 * s for s in top_grid) != bottom_grid:
      raise ValueError(
          f"the top token grid is {top_grid} and the bottom grid {bottom_grid}; the top grid "
          "must be half the bottom grid in each direction (both from one encode call)")
    return self._decode(self.top_quantizer.decode_indices(top_indices),
                        self.bottom_quantizer.decode_indices(bottom_indices))


# Test-sized model: 16 hidden channels, one residual block, 32-code codebooks of dim 8.
TinyVQVAE2 = functools.partial(
    VQVAE2, top_quantizer=VectorQuantizer(codebook_size=32, dim=8),
    bottom_quantizer=VectorQuantizer(codebook_size=32, dim=8), embedding_dim=8,
    hidden_channels=16, residual_channels=8, num_residual_layers=1)
