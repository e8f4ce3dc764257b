"""PatchGAN discriminator (Isola et al. 2017, pix2pix's NLayerDiscriminator), as VQGAN
(taming-transformers) uses it.

    4x4 stride-2 conv to `channels`, leaky ReLU(0.2)
    n = 1 .. num_layers - 1: 4x4 stride-2 conv to channels * min(2**n, 8), norm, leaky ReLU
    4x4 stride-1 conv to channels * min(2**num_layers, 8), norm, leaky ReLU
    4x4 stride-1 conv to one logit per patch

Every conv pads 1 pixel on each side as taming does, so a side of n pixels gives
n // 2**num_layers - 2 logits (30 x 30 for 256 x 256 images and num_layers=3); images need
at least 3 * 2**num_layers pixels per side. Logits are float32 [B, h', w'] (the channel
axis of size 1 is dropped).

norm: 'batch' (taming's default; the convs before it then have no bias), 'group' (GroupNorm
with `taming.group_count` groups) or 'none'. BatchNorm follows PyTorch's defaults
(momentum 0.1 there, 0.9 here; epsilon 1e-5), except that its running variance is the
biased batch variance. With train=True it normalizes with the batch statistics (over the
global batch on `axis_name` under pmap, so that every replica normalizes alike) and
updates the 'batch_stats' collection, which must then be mutable
(`apply(..., mutable=['batch_stats'])`); with train=False it uses the running averages.
Initialize with train=False: batch statistics over `axis_name` exist only inside pmap.
"""
from __future__ import annotations

import functools
from collections.abc import Hashable

import flax.linen as nn
import jax.numpy as jnp
from flax.typing import Dtype

from vqjax import collectives
from vqjax.models import convolution
from vqjax.models.group_norm import GroupNorm
from vqjax.models.taming import group_count

NORMS = ("batch", "group", "none")
_PADDING = ((1, 1), (1, 1))  # taming's padding=1 with 4x4 kernels


def min_image_size(num_layers: int) -> int:
  """The smallest image side that gives a 1 x 1 logit grid: 3 * 2**num_layers."""
  return 3 * 2 ** num_layers


def check_discriminator(*, channels: int, num_layers: int, norm: str) -> None:
  if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
    raise ValueError(f"channels is {channels!r}; it must be a positive int (taming uses 64)")
  if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
    raise ValueError(f"num_layers is {num_layers!r}; it must be a positive int (taming uses 3)")
  if norm not in NORMS:
    raise ValueError(f"norm is {norm!r}; use one of {NORMS} ('batch' is taming's)")


def check_discriminator_images(images, num_layers: int) -> None:
  """Checks that images are [B, H, W, C] with sides of at least min_image_size."""
  shape = getattr(images, "shape", None)
  if shape is None or len(shape) != 4:
    raise ValueError(f"images must have shape [batch, height, width, channels]; got shape "
                     f"{shape} (add a batch axis with images[None])")
  size, minimum = min(shape[1:3]), min_image_size(num_layers)
  if size < minimum:
    fits = [n for n in range(1, num_layers) if size >= min_image_size(n)]
    fix = (f"use num_layers={fits[-1]} or images of at least {minimum} pixels" if fits else
           f"use images of at least {minimum} pixels per side")
    raise ValueError(
        f"image size {size} is too small for a PatchGAN discriminator with "
        f"num_layers={num_layers}: it needs at least {minimum} pixels (3 * 2**num_layers) "
        f"per side; {fix}")


class PatchGANDiscriminator(nn.Module):
  """Images [B, H, W, C] -> float32 logits [B, H // 2**num_layers - 2, W // ... - 2], one
  per overlapping patch ("real" > 0). Defaults are taming's."""
  channels: int = 64
  num_layers: int = 3
  norm: str = "batch"
  axis_name: Hashable | None = None
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, images, *, train: bool):
    check_discriminator(channels=self.channels, num_layers=self.num_layers, norm=self.norm)
    check_discriminator_images(images, self.num_layers)
    conv = functools.partial(nn.Conv, kernel_size=(4, 4), padding=_PADDING, dtype=self.dtype,
                             param_dtype=self.param_dtype,
                             conv_general_dilated=convolution.conv_general_dilated)
    x = nn.leaky_relu(conv(self.channels, strides=(2, 2), name="conv0")(images), 0.2)
    for n in range(1, self.num_layers + 1):
      last = n == self.num_layers  # the stride-1 conv
      x = conv(self.channels * min(2 ** n, 8), strides=(1, 1) if last else (2, 2),
               use_bias=self.norm != "batch", name=f"conv{n}")(x)
      x = nn.leaky_relu(self._norm(x, train, name=f"norm{n}"), 0.2)
    logits = conv(1, strides=(1, 1), name="logits")(x)
    return logits[..., 0].astype(jnp.float32)

  def _norm(self, x, train: bool, name: str):
    if self.norm == "batch":
      # Statistics over the global batch; over one device, no collective at all.
      axis_name = collectives.batch_norm_axis(self.axis_name) if train else None
      return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                          axis_name=axis_name, dtype=self.dtype,
                          param_dtype=self.param_dtype, name=name)(x)
    if self.norm == "group":
      return GroupNorm(num_groups=group_count(x.shape[-1]), epsilon=1e-6, dtype=self.dtype,
                       param_dtype=self.param_dtype, name=name)(x)
    return x


# Test-sized discriminator: 8 channels, two layers (images of 12 pixels or more; 16 x 16
# images give 2 x 2 logits).
TinyPatchGAN = functools.partial(PatchGANDiscriminator, channels=8, num_layers=2)
