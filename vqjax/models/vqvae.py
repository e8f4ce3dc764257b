"""VQ-VAE (van den Oord et al. 2017, "Neural Discrete Representation Learning").

    images -> Encoder -> 1x1 conv to embedding_dim -> quantizer -> Decoder -> reconstruction

Any quantizer layer that keeps the contract of `vqjax.nn.output` plugs in as the
`quantizer` field, an unbound instance such as
`VectorQuantizer(codebook_size=512, dim=64, ema_decay=0.99)`, called as
`quantizer(z_e, train=train)`. embedding_dim is the number of channels the quantizer
takes, its `input_dim` (dim for VQ, residual, grouped and LFQ; len(levels) for FSQ;
codebook_size for Gumbel-softmax, whose input is logits); the decoder takes whatever the
quantizer returns.

The quantizer searches in float32: z_e is cast to float32 whatever the compute `dtype`,
and the reconstruction is returned in float32. `VQVAEOutput` reports the quantizer's
`QuantizerOutput`:
  quantizer_losses  its `losses`, weighted as the quantizer reports them (VQ:
                    codebook_loss, commitment_loss times beta; LFQ: entropy_loss,
                    commitment_loss, unweighted; Gumbel: kl_loss, unweighted; FSQ: none)
  quantizer_loss    their sum, a float32 scalar (0 for FSQ); reweigh in the train step
                    from quantizer_losses where the quantizer reports unweighted terms
  metrics           its `metrics`: usage and diagnostics (e.g. LFQ's entropies)

EMA codebooks and dead-code restarts update with train=True and 'quantizer_state' mutable,
and draw keys from the 'quantizer' rng stream, as the quantizer layers document.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.typing import Dtype

from vqjax.models.layers import (Decoder, Encoder, check_architecture,
                                 check_downsample_factor, check_downsample_kernel,
                                 check_images)
from vqjax.nn import QuantizerOutput, VectorQuantizer


class VQVAEOutput(NamedTuple):
  reconstruction: jax.Array  # float32 [B, H, W, image_channels]
  quantizer_loss: jax.Array  # float32 scalar, the sum of quantizer_losses
  quantizer_losses: dict     # name -> float32 scalar, e.g. codebook_loss, commitment_loss
  indices: jax.Array         # int32 token grid [B, H / f, W / f] (residual: [..., levels])
  metrics: dict              # quantizer usage metrics and diagnostics


class DecoderFeatures(NamedTuple):
  """What `decoder_features` returns: everything of the output but the last layer's work
  (the adversarial step applies `to_image` itself, to take gradients at that layer)."""
  features: jax.Array        # the input of the last layer, compute dtype
  quantizer_loss: jax.Array  # as in VQVAEOutput
  quantizer_losses: dict
  indices: jax.Array
  metrics: dict


def check_quantizer(quantizer: nn.Module, embedding_dim: int, name: str = "quantizer") -> None:
  """Checks that the quantizer takes embedding_dim channels, its `input_dim`."""
  if not hasattr(quantizer, "input_dim"):
    raise ValueError(
        f"the {name} ({type(quantizer).__name__}) has no input_dim; a quantizer layer must "
        "keep the contract of vqjax.nn.output (input_dim, num_codes, decode_indices, "
        "__call__ -> QuantizerOutput)")
  dim = quantizer.input_dim
  field = getattr(quantizer, "input_dim_field", "input_dim")
  if dim != embedding_dim:
    raise ValueError(
        f"embedding_dim is {embedding_dim} but the {name} ({type(quantizer).__name__}) takes "
        f"{dim} channels (its {field}); set embedding_dim={dim} or build the {name} with "
        f"{field} {embedding_dim}")


def quantizer_terms(out: QuantizerOutput, prefix: str = "") -> tuple[dict, dict]:
  """A quantizer output's (losses, metrics), keys prefixed by prefix."""
  return ({prefix + k: v for k, v in out.losses.items()},
          {prefix + k: v for k, v in out.metrics.items()})


def total_loss(losses: dict):
  """The float32 sum of the loss terms; 0 when there are none."""
  return sum((v.astype(jnp.float32) for v in losses.values()), jnp.zeros((), jnp.float32))


class VQVAE(nn.Module):
  """VQ-VAE over images [B, H, W, image_channels] with H and W divisible by downsample_factor.

  `__call__(images, *, train)` -> VQVAEOutput; `encode(images)` -> token grid;
  `decode_indices(indices)` -> float32 images. Defaults follow the Sonnet VQ-VAE example
  (the paper uses hidden_channels=256 on ImageNet).

  local_encoder=True: every encoder convolution after the strided ones is 1x1, so a token
  depends only on its own 10x10-pixel window (factor 4). On small images whose tokens
  would otherwise each see the whole image (MNIST), local tokens describe their own patch:
  blank patches all get one code and the grid is easier for a prior to model, at some
  cost in reconstruction (experiments/configs/mnist.py:local_encoder=true).
  encoder_downsample_kernel: the kernel of the encoder's strided convolutions (4 as in the
  paper; 3, as in the Keras VQ-VAE example, shrinks a local token's window to 7x7 pixels).
  """
  quantizer: nn.Module
  embedding_dim: int = 64
  image_channels: int = 3
  hidden_channels: int = 128
  residual_channels: int = 32
  num_residual_layers: int = 2
  downsample_factor: int = 4
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  local_encoder: bool = False
  encoder_downsample_kernel: int = 4

  def setup(self):
    check_architecture(hidden_channels=self.hidden_channels,
                       residual_channels=self.residual_channels,
                       num_residual_layers=self.num_residual_layers)
    check_downsample_factor(self.downsample_factor)
    check_downsample_kernel(self.encoder_downsample_kernel)
    check_quantizer(self.quantizer, self.embedding_dim)
    stack = dict(hidden_channels=self.hidden_channels, residual_channels=self.residual_channels,
                 num_residual_layers=self.num_residual_layers, dtype=self.dtype,
                 param_dtype=self.param_dtype)
    self.encoder = Encoder(downsample_factor=self.downsample_factor, local=self.local_encoder,
                           downsample_kernel=self.encoder_downsample_kernel, **stack)
    self.pre_quantization = nn.Conv(self.embedding_dim, (1, 1), dtype=self.dtype,
                                    param_dtype=self.param_dtype)
    self.decoder = Decoder(self.image_channels, upsample_factor=self.downsample_factor, **stack)

  def _quantize(self, images, train: bool):
    check_images(images, image_channels=self.image_channels, factor=self.downsample_factor)
    z_e = self.pre_quantization(self.encoder(images))
    return self.quantizer(z_e.astype(jnp.float32), train=train)  # float32 search

  def __call__(self, images, *, train: bool) -> VQVAEOutput:
    out = self._quantize(images, train)
    losses, metrics = quantizer_terms(out)
    reconstruction = self.decoder(out.quantized).astype(jnp.float32)
    return VQVAEOutput(reconstruction, total_loss(losses), losses, out.indices, metrics)

  @property
  def output_layer_path(self) -> tuple[str, ...]:
    """Where the last layer's parameters are: params['decoder']['up<n-1>']."""
    return ("decoder", f"up{check_downsample_factor(self.downsample_factor) - 1}")

  def decoder_features(self, images, *, train: bool) -> DecoderFeatures:
    """Everything but the decoder's last layer (see DecoderFeatures)."""
    out = self._quantize(images, train)
    losses, metrics = quantizer_terms(out)
    return DecoderFeatures(self.decoder(out.quantized, stage="features"), total_loss(losses),
                           losses, out.indices, metrics)

  def to_image(self, features):
    """The decoder's last layer: features -> float32 images [B, H, W, image_channels]."""
    return self.decoder(features, stage="output").astype(jnp.float32)

  def encode(self, images):
    """Images -> int32 token grid [B, H / f, W / f] (residual/grouped: [..., levels])."""
    return self._quantize(images, train=False).indices

  def decode_indices(self, indices):
    """Token grid -> float32 images [B, H, W, image_channels]."""
    return self.decoder(self.quantizer.decode_indices(indices)).astype(jnp.float32)


# Test-sized model: 16 hidden channels, one residual block, a 32-code codebook of dim 8.
# Override quantizer= (with embedding_dim=) to try another quantizer.
TinyVQVAE = functools.partial(
    VQVAE, quantizer=VectorQuantizer(codebook_size=32, dim=8), embedding_dim=8,
    hidden_channels=16, residual_channels=8, num_residual_layers=1)
