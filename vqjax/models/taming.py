"""Encoder and decoder of VQGAN (Esser et al. 2021, "Taming Transformers for
High-Resolution Image Synthesis"), following taming-transformers' `diffusionmodules/model.py`.

    TamingEncoder  3x3 conv_in to `channels`; for each level i of channel_multipliers:
                   num_res_blocks ResnetBlocks at channels * mult[i] (each followed by an
                   AttentionBlock where the feature-map side is in attention_resolutions),
                   then a Downsample except after the last level; middle ResnetBlock,
                   AttentionBlock, ResnetBlock; GroupNorm, swish, 3x3 conv_out to z_channels
    TamingDecoder  3x3 conv_in to channels * mult[-1]; the middle block; the levels in
                   reverse, num_res_blocks + 1 ResnetBlocks each (and attention as above),
                   an Upsample between levels; GroupNorm and swish. It returns these
                   features, channels * mult[0] wide at full resolution: the model applies
                   the last conv itself, so that the GAN loss can reach its kernel.

The downsampling factor is 2 ** (len(channel_multipliers) - 1) (16 for taming's
(1, 1, 2, 2, 4)). Whether a block gets attention is decided at trace time from the actual
feature-map side: its height (taming's `curr_res`, which assumes square images).

GroupNorm uses 32 groups as in taming, or, where the channels are not divisible by 32, the
largest divisor of the channels below 32 (`group_count`), so that any width works.
Dropout (in every ResnetBlock) is active only with train=True and dropout_rate > 0, and
then draws from the 'dropout' rng stream. Parameters are param_dtype, computation is
`dtype`; attention takes its softmax in float32. The 3x3 convs on latent grids smaller than
3x3 run as matrix products (`convolution`), not in XLA:CPU's slow path.
"""
from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.typing import Dtype

from vqjax.models import convolution
from vqjax.models.group_norm import GroupNorm
from vqjax.models.transposed_convolution import NearestUpsamplingConv

MAX_GROUPS = 32
EPSILON = 1e-6  # taming's GroupNorm epsilon


def group_count(channels: int, max_groups: int = MAX_GROUPS) -> int:
  """The largest divisor of channels that is <= max_groups: 32 for any multiple of 32."""
  return max(g for g in range(1, min(channels, max_groups) + 1) if channels % g == 0)


def _positive_int(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def check_taming_architecture(*, channels: int, channel_multipliers: Sequence[int],
                              num_res_blocks: int, attention_resolutions: Sequence[int],
                              dropout_rate: float, z_channels: int | None = None) -> None:
  """Checks the fields shared by TamingEncoder, TamingDecoder and VQGAN."""
  if not _positive_int(channels):
    raise ValueError(f"channels is {channels!r}; it must be a positive int (taming uses 128)")
  if z_channels is not None and not _positive_int(z_channels):
    raise ValueError(f"z_channels is {z_channels!r}; it must be a positive int (taming uses 256)")
  multipliers = tuple(channel_multipliers)
  if not multipliers:
    raise ValueError("channel_multipliers is empty; give one multiplier per resolution level, "
                     "e.g. (1, 1, 2, 2, 4) for a downsampling factor of 16")
  if not all(_positive_int(m) for m in multipliers):
    raise ValueError(f"channel_multipliers is {multipliers}; every multiplier must be a "
                     "positive int, e.g. (1, 1, 2, 2, 4)")
  if not _positive_int(num_res_blocks):
    raise ValueError(f"num_res_blocks is {num_res_blocks!r}; it must be a positive int "
                     "(taming uses 2)")
  if not all(_positive_int(r) for r in attention_resolutions):
    raise ValueError(f"attention_resolutions is {tuple(attention_resolutions)}; give positive "
                     "feature-map sides, e.g. (16,), or () for no attention outside the middle")
  if not 0.0 <= dropout_rate < 1.0:
    raise ValueError(f"dropout_rate is {dropout_rate}; it must be in [0, 1) (taming uses 0.0)")


def _group_norm(x, dtype, param_dtype, name):
  return GroupNorm(num_groups=group_count(x.shape[-1]), epsilon=EPSILON, dtype=dtype,
                   param_dtype=param_dtype, name=name)(x)


class ResnetBlock(nn.Module):
  """GroupNorm, swish, 3x3 conv, GroupNorm, swish, dropout, 3x3 conv, added to the input
  (through a 1x1 conv where the channels change). out_channels None keeps the input's."""
  out_channels: int | None = None
  dropout_rate: float = 0.0
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    out_channels = self.out_channels or x.shape[-1]
    conv = lambda features, kernel, name: nn.Conv(
        features, kernel, dtype=self.dtype, param_dtype=self.param_dtype,
        conv_general_dilated=convolution.conv_general_dilated, name=name)
    h = nn.swish(_group_norm(x, self.dtype, self.param_dtype, "norm1"))
    h = conv(out_channels, (3, 3), "conv1")(h)
    h = nn.swish(_group_norm(h, self.dtype, self.param_dtype, "norm2"))
    h = nn.Dropout(self.dropout_rate, deterministic=not train)(h)
    h = conv(out_channels, (3, 3), "conv2")(h)
    if x.shape[-1] != out_channels:
      x = conv(out_channels, (1, 1), "shortcut")(x)
    return x + h


class AttentionBlock(nn.Module):
  """Single-head self-attention over all h * w positions (1x1 q, k, v and output
  projections after a GroupNorm), added to the input."""
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    batch, height, width, channels = x.shape
    conv = lambda name: nn.Conv(channels, (1, 1), dtype=self.dtype,
                                param_dtype=self.param_dtype,
                                conv_general_dilated=convolution.conv_general_dilated,
                                name=name)
    h = _group_norm(x, self.dtype, self.param_dtype, "norm")
    q, k, v = (conv(name)(h).reshape(batch, height * width, channels)
               for name in ("q", "k", "v"))
    logits = jnp.einsum("bqc,bkc->bqk", q, k).astype(jnp.float32) * channels ** -0.5
    weights = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
    h = jnp.einsum("bqk,bkc->bqc", weights, v).reshape(batch, height, width, channels)
    return x + conv("proj_out")(h)


class Downsample(nn.Module):
  """3x3 stride-2 conv halving the side: taming pads (0, 1, 0, 1) and convolves VALID,
  which is this conv's explicit padding ((0, 1), (0, 1))."""
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    return nn.Conv(x.shape[-1], (3, 3), (2, 2), ((0, 1), (0, 1)), dtype=self.dtype,
                   param_dtype=self.param_dtype,
                   conv_general_dilated=convolution.conv_general_dilated, name="conv")(x)


class Upsample(nn.Module):
  """Nearest-neighbour 2x upsampling, then a 3x3 conv, computed as one transposed
  convolution of the small input with the taps folded (2.25x fewer products; the same
  parameters, 'conv/kernel' and 'conv/bias' as taming's conv)."""
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    return NearestUpsamplingConv(x.shape[-1], dtype=self.dtype, param_dtype=self.param_dtype,
                                 name="conv")(x)


class _TamingStack(nn.Module):
  """Fields and blocks shared by the encoder and the decoder."""
  channels: int = 128
  channel_multipliers: Sequence[int] = (1, 1, 2, 2, 4)
  num_res_blocks: int = 2
  attention_resolutions: Sequence[int] = (16,)
  dropout_rate: float = 0.0
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def _check(self, z_channels: int | None = None) -> None:
    check_taming_architecture(
        channels=self.channels, channel_multipliers=self.channel_multipliers,
        num_res_blocks=self.num_res_blocks, attention_resolutions=self.attention_resolutions,
        dropout_rate=self.dropout_rate, z_channels=z_channels)

  def _conv(self, features, name):
    return nn.Conv(features, (3, 3), dtype=self.dtype, param_dtype=self.param_dtype,
                   conv_general_dilated=convolution.conv_general_dilated, name=name)

  def _res_block(self, x, out_channels, name, train):
    return ResnetBlock(out_channels, self.dropout_rate, self.dtype, self.param_dtype,
                       name=name)(x, train=train)

  def _attention(self, x, name):
    return AttentionBlock(self.dtype, self.param_dtype, name=name)(x)

  def _maybe_attention(self, x, name):
    return self._attention(x, name) if x.shape[1] in tuple(self.attention_resolutions) else x

  def _middle(self, x, train):
    x = self._res_block(x, None, "mid_block0", train)
    x = self._attention(x, "mid_attn")
    return self._res_block(x, None, "mid_block1", train)


class TamingEncoder(_TamingStack):
  """Images [B, H, W, C] -> [B, H / f, W / f, z_channels] in `dtype`, f = 2 **
  (len(channel_multipliers) - 1); the model adds the 1x1 projection to the code dim."""
  z_channels: int = 256

  @nn.compact
  def __call__(self, x, *, train: bool):
    self._check(self.z_channels)
    x = self._conv(self.channels, "conv_in")(x)
    last = len(self.channel_multipliers) - 1
    for i, multiplier in enumerate(self.channel_multipliers):
      for j in range(self.num_res_blocks):
        x = self._res_block(x, self.channels * multiplier, f"down{i}_block{j}", train)
        x = self._maybe_attention(x, f"down{i}_attn{j}")
      if i != last:
        x = Downsample(self.dtype, self.param_dtype, name=f"down{i}_downsample")(x)
    x = self._middle(x, train)
    x = nn.swish(_group_norm(x, self.dtype, self.param_dtype, "norm_out"))
    return self._conv(self.z_channels, "conv_out")(x)


class TamingDecoder(_TamingStack):
  """Codes [B, h, w, z] -> features [B, h * f, w * f, channels * channel_multipliers[0]]
  in `dtype`, after the final GroupNorm and swish; the model applies the output conv."""

  @nn.compact
  def __call__(self, x, *, train: bool):
    self._check()
    x = self._conv(self.channels * self.channel_multipliers[-1], "conv_in")(x)
    x = self._middle(x, train)
    for i in reversed(range(len(self.channel_multipliers))):
      for j in range(self.num_res_blocks + 1):
        x = self._res_block(x, self.channels * self.channel_multipliers[i],
                            f"up{i}_block{j}", train)
        x = self._maybe_attention(x, f"up{i}_attn{j}")
      if i != 0:
        x = Upsample(self.dtype, self.param_dtype, name=f"up{i}_upsample")(x)
    return nn.swish(_group_norm(x, self.dtype, self.param_dtype, "norm_out"))
