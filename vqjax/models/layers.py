"""Convolutional encoder and decoder of VQ-VAE (van den Oord et al. 2017), shared by
VQ-VAE and VQ-VAE-2, and the shape checks that run before anything compiles.

    Encoder   log2(factor) x [kxk stride-2 conv (k = 4 by default), ReLU], 3x3 conv,
              ResidualStack; local=True makes the 3x3 convolutions 1x1
    Decoder   3x3 conv, ResidualStack, log2(factor) 4x4 stride-2 transposed convs with
              ReLU between; the last maps to out_channels with no activation
    ResidualStack  num_layers x [x + 1x1 conv(ReLU(3x3 conv(ReLU(x))))], then a ReLU

Every layer keeps float32 parameters (param_dtype) and computes in `dtype` (float32, or
bfloat16 on TPU/GPU); outputs are in `dtype`.
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
from flax.typing import Dtype

from vqjax.models.transposed_convolution import ConvTranspose


def check_downsample_factor(factor: int, name: str = "downsample_factor") -> int:
  """Returns log2(factor) after checking that factor is a power of 2 >= 2."""
  whole = not isinstance(factor, bool) and int(factor) == factor
  if not whole or factor < 2 or int(factor) & (int(factor) - 1):
    raise ValueError(
        f"{name} is {factor}; it must be a power of 2 >= 2 (every stride-2 convolution "
        "halves the image), e.g. 4 or 8")
  return int(factor).bit_length() - 1


def check_downsample_kernel(kernel: int) -> None:
  if isinstance(kernel, bool) or int(kernel) != kernel or kernel < 2:
    raise ValueError(
        f"the encoder's downsample kernel is {kernel}; it must be a whole number >= 2 "
        "(4 in the paper, 3 in the Keras VQ-VAE example)")


def check_architecture(*, hidden_channels: int, residual_channels: int,
                       num_residual_layers: int) -> None:
  if hidden_channels < 1 or residual_channels < 1:
    raise ValueError(
        f"hidden_channels is {hidden_channels} and residual_channels is {residual_channels}; "
        "both must be at least 1 (the paper uses 256 and 32)")
  if num_residual_layers < 0:
    raise ValueError(
        f"num_residual_layers is {num_residual_layers}; it must be >= 0 (the paper uses 2)")


def _nearest_multiples(size: int, factor: int) -> str:
  below, above = size // factor * factor, (size // factor + 1) * factor
  return f"{below} or {above}" if below > 0 else f"{above}"


def check_images(images, *, image_channels: int, factor: int) -> None:
  """Checks that images is floating [batch, height, width, image_channels] with height and
  width divisible by the total downsampling factor."""
  shape = getattr(images, "shape", None)
  if shape is None or len(shape) != 4:
    raise ValueError(
        f"images must have shape [batch, height, width, channels]; got shape {shape} "
        "(add a batch axis with images[None])")
  if not jnp.issubdtype(images.dtype, jnp.floating):
    raise ValueError(
        f"images have dtype {images.dtype}; the model takes floating images: "
        "cast with images.astype(jnp.float32) and scale them, e.g. to [-1, 1]")
  if shape[-1] != image_channels:
    raise ValueError(
        f"images have {shape[-1]} channels but the model has image_channels={image_channels}; "
        f"build the model with image_channels={shape[-1]}")
  for size in sorted(set(shape[1:3])):
    if size % factor:
      raise ValueError(
          f"image size {size} is not divisible by the encoder's downsampling factor {factor}; "
          f"use {_nearest_multiples(size, factor)}")


class ResidualStack(nn.Module):
  """num_layers residual blocks, ReLU, kxk conv (k = kernel_size, 3 by default), ReLU, 1x1
  conv, added to the input; a final ReLU. Keeps the input's channels."""
  residual_channels: int
  num_layers: int
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  kernel_size: int = 3

  @nn.compact
  def __call__(self, x):
    channels = x.shape[-1]
    k = self.kernel_size
    for i in range(self.num_layers):
      h = nn.Conv(self.residual_channels, (k, k), dtype=self.dtype,
                  param_dtype=self.param_dtype,
                  name=f"block{i}_conv{k}x{k}" if k > 1 else f"block{i}_pointwise")(nn.relu(x))
      h = nn.Conv(channels, (1, 1), dtype=self.dtype, param_dtype=self.param_dtype,
                  name=f"block{i}_conv1x1")(nn.relu(h))
      x = x + h
    return nn.relu(x)


class Encoder(nn.Module):
  """Images [B, H, W, C] -> features [B, H / factor, W / factor, hidden_channels]; the
  models add the 1x1 projection to the code dimension.

  Stride-2 kxk convolutions (k = downsample_kernel, 4 by default), then a 3x3 convolution
  and the residual stack. local=True makes every convolution after the strided ones 1x1,
  so that a feature sees only the strided convolutions' window (10x10 pixels at factor 4
  with k = 4, 7x7 with k = 3) instead of most of a small image.
  """
  hidden_channels: int
  residual_channels: int
  num_residual_layers: int
  downsample_factor: int
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  local: bool = False
  downsample_kernel: int = 4

  @nn.compact
  def __call__(self, x):
    check_downsample_kernel(self.downsample_kernel)
    conv = lambda kernel, strides, padding, name: nn.Conv(
        self.hidden_channels, kernel, strides, padding, dtype=self.dtype,
        param_dtype=self.param_dtype, name=name)
    down = int(self.downsample_kernel)
    pad = (down - 1) // 2  # halves every even size exactly, for odd and even kernels
    for i in range(check_downsample_factor(self.downsample_factor)):
      x = nn.relu(conv((down, down), (2, 2), ((pad, pad), (pad, pad)), f"down{i}")(x))
    k = 1 if self.local else 3
    x = conv((k, k), (1, 1), "SAME", f"conv{k}x{k}")(x)
    return ResidualStack(self.residual_channels, self.num_residual_layers, self.dtype,
                         self.param_dtype, kernel_size=k, name="residual_stack")(x)


class Decoder(nn.Module):
  """Codes [B, h, w, d] -> [B, h * factor, w * factor, out_channels], unbounded (no final
  activation)."""
  out_channels: int
  hidden_channels: int
  residual_channels: int
  num_residual_layers: int
  upsample_factor: int
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, stage: str = "all"):
    """stage 'all': codes -> images; 'features': codes -> the input of the last layer;
    'output': that input -> images (the last layer alone, `output_layer_name`)."""
    if stage not in ("all", "features", "output"):
      raise ValueError(f"unknown decoder stage {stage!r}; use 'all', 'features' or 'output'")
    steps = check_downsample_factor(self.upsample_factor, "upsample_factor")
    up = lambda i, channels: ConvTranspose(channels, (4, 4), (2, 2), "SAME",
                                           dtype=self.dtype, param_dtype=self.param_dtype,
                                           name=f"up{i}")
    if stage != "output":
      x = nn.Conv(self.hidden_channels, (3, 3), dtype=self.dtype,
                  param_dtype=self.param_dtype, name="conv3x3")(x)
      x = ResidualStack(self.residual_channels, self.num_residual_layers, self.dtype,
                        self.param_dtype, name="residual_stack")(x)
      for i in range(steps - 1):
        x = nn.relu(up(i, self.hidden_channels)(x))
    if stage != "features":
      x = up(steps - 1, self.out_channels)(x)
    return x

  @property
  def output_layer_name(self) -> str:
    """The name of the last layer's parameters (the adaptive GAN weight is taken there)."""
    return f"up{check_downsample_factor(self.upsample_factor, 'upsample_factor') - 1}"
