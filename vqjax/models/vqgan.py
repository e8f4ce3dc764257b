"""VQGAN tokenizer (Esser et al. 2021, "Taming Transformers for High-Resolution Image
Synthesis"), with taming-transformers' encoder and decoder.

    images -> TamingEncoder -> pre_quantization (1x1 conv, z_channels -> embedding_dim)
           -> quantizer -> post_quantization (1x1 conv, embedding_dim -> z_channels)
           -> TamingDecoder features -> output_layer (3x3 conv to image_channels)

The output conv is a direct submodule named `output_layer`, so its kernel is
params['output_layer']['kernel']: the last layer on which the train step compares the
norms of the reconstruction and GAN gradients (the paper's adaptive weight).
`decoder_features` stops before it and `to_image` applies it; `__call__` chains the two and
returns a `VQVAEOutput`, so everything that consumes VQ-VAE outputs (eval step, token
encoding) takes a VQGAN unchanged. The quantizer conventions are those of
`vqjax.models.vqvae`: any quantizer layer of `vqjax.nn` as an unbound `quantizer`, taking
embedding_dim channels, searching in float32 (z_e is cast to float32 whatever the compute
dtype), the same quantizer_loss / quantizer_losses / metrics, and the reconstruction in
float32.

ViT-VQGAN's factorized, l2-normalized codes (Yu et al. 2022, "Vector-quantized Image
Modeling with Improved VQGAN") need no extra layer: the 1x1 pre_quantization conv is the
projection to a low-dimensional code space, and
`quantizer=VectorQuantizer(codebook_size=K, dim=d, metric='cosine')` with embedding_dim=d
(8 to 32) l2-normalizes z_e and the codes before the search, so the decoder reads unit
code vectors.

Dropout (dropout_rate > 0) is active with train=True and draws from the 'dropout' rng
stream; EMA codebooks and restarts update as in VQVAE ('quantizer_state' mutable,
'quantizer' rng stream).
"""
from __future__ import annotations

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp
from flax.typing import Dtype

from vqjax.models.layers import check_images
from vqjax.models.taming import TamingDecoder, TamingEncoder, check_taming_architecture
from vqjax.models.vqvae import (DecoderFeatures, VQVAEOutput, check_quantizer, quantizer_terms,
                               total_loss)
from vqjax.nn import VectorQuantizer


VQGANFeatures = DecoderFeatures  # features before output_layer, in the compute dtype


class VQGAN(nn.Module):
  """VQGAN over images [B, H, W, image_channels], H and W divisible by downsample_factor
  = 2 ** (len(channel_multipliers) - 1). Defaults are taming's f16 ImageNet model (with
  a codebook of embedding_dim 256).

  `__call__(images, *, train)` -> VQVAEOutput; `decoder_features(images, *, train)` ->
  VQGANFeatures; `to_image(features)` -> float32 images; `encode(images)` -> token grid;
  `decode_indices(indices)` -> float32 images.
  """
  quantizer: nn.Module
  embedding_dim: int = 256
  image_channels: int = 3
  channels: int = 128
  channel_multipliers: Sequence[int] = (1, 1, 2, 2, 4)
  num_res_blocks: int = 2
  attention_resolutions: Sequence[int] = (16,)
  z_channels: int = 256
  dropout_rate: float = 0.0
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @property
  def downsample_factor(self) -> int:
    """Image side / token-grid side: 2 ** (len(channel_multipliers) - 1)."""
    return 2 ** (len(self.channel_multipliers) - 1)

  def setup(self):
    check_taming_architecture(
        channels=self.channels, channel_multipliers=self.channel_multipliers,
        num_res_blocks=self.num_res_blocks, attention_resolutions=self.attention_resolutions,
        dropout_rate=self.dropout_rate, z_channels=self.z_channels)
    if not isinstance(self.embedding_dim, int) or self.embedding_dim < 1:
      raise ValueError(f"embedding_dim is {self.embedding_dim!r}; it must be a positive int, "
                       "the number of channels the quantizer takes")
    if not isinstance(self.image_channels, int) or self.image_channels < 1:
      raise ValueError(f"image_channels is {self.image_channels!r}; it must be a positive "
                       "int (3 for RGB)")
    check_quantizer(self.quantizer, self.embedding_dim)
    stack = dict(channels=self.channels, channel_multipliers=tuple(self.channel_multipliers),
                 num_res_blocks=self.num_res_blocks,
                 attention_resolutions=tuple(self.attention_resolutions),
                 dropout_rate=self.dropout_rate, dtype=self.dtype, param_dtype=self.param_dtype)
    conv = functools.partial(nn.Conv, dtype=self.dtype, param_dtype=self.param_dtype)
    self.encoder = TamingEncoder(z_channels=self.z_channels, **stack)
    self.pre_quantization = conv(self.embedding_dim, (1, 1))
    self.post_quantization = conv(self.z_channels, (1, 1))
    self.decoder = TamingDecoder(**stack)
    self.output_layer = conv(self.image_channels, (3, 3))

  def _quantize(self, images, train: bool):
    check_images(images, image_channels=self.image_channels, factor=self.downsample_factor)
    z_e = self.pre_quantization(self.encoder(images, train=train))
    return self.quantizer(z_e.astype(jnp.float32), train=train)  # float32 search

  def _features(self, quantized, train: bool):
    return self.decoder(self.post_quantization(quantized), train=train)

  def decoder_features(self, images, *, train: bool) -> VQGANFeatures:
    """Everything but output_layer: the train step applies `to_image` itself to take
    gradients on params['output_layer']."""
    out = self._quantize(images, train)
    losses, metrics = quantizer_terms(out)
    return VQGANFeatures(self._features(out.quantized, train), total_loss(losses), losses,
                         out.indices, metrics)

  output_layer_path = ("output_layer",)  # where the adaptive GAN weight's layer is

  def to_image(self, features):
    """Decoder features -> float32 images [B, H, W, image_channels] (output_layer)."""
    return self.output_layer(features).astype(jnp.float32)

  def __call__(self, images, *, train: bool) -> VQVAEOutput:
    out = self.decoder_features(images, train=train)
    return VQVAEOutput(self.to_image(out.features), out.quantizer_loss, out.quantizer_losses,
                       out.indices, out.metrics)

  def encode(self, images):
    """Images -> int32 token grid [B, H / f, W / f] (residual/grouped: [..., levels])."""
    return self._quantize(images, train=False).indices

  def decode_indices(self, indices):
    """Token grid -> float32 images [B, H, W, image_channels]."""
    return self.to_image(self._features(self.quantizer.decode_indices(indices), train=False))


# Test-sized model: 16 channels, two levels (downsampling factor 2), one res block,
# attention where the side is 4 (the second level of 8x8 images), a 32-code codebook of
# dim 8. Override quantizer= (with embedding_dim=) to try another quantizer.
TinyVQGAN = functools.partial(
    VQGAN, quantizer=VectorQuantizer(codebook_size=32, dim=8), embedding_dim=8,
    channels=16, channel_multipliers=(1, 2), num_res_blocks=1, attention_resolutions=(4,),
    z_channels=16)
