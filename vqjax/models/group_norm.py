"""GroupNorm of channels-last feature maps with nn.GroupNorm's parameters and numbers, its
statistics reduced channel by channel first.

    group_statistics(x, num_groups) -> (mean, variance), float32 [B, num_groups]
    GroupNorm   Flax layer with nn.GroupNorm's parameters ('scale', 'bias')

Why: nn.GroupNorm reduces x viewed as [B, positions, groups, channels per group] over the
axes on both sides of the groups axis it keeps, and XLA:CPU (jaxlib 0.10) runs that
reduction in a slow loop: the forward pass over 4 x 64x64x64 takes 4.27 ms on one core,
against 0.71 ms here (torch's GroupNorm + SiLU: 0.70 ms); with swish, forward and
backward, 6.6 ms -> 3.8 ms (torch 3.0). Here the sums over positions come first, per
channel (a reduction that keeps the channels minor, which XLA vectorizes), then the few
channels of each group are added up. The variance is two-pass, E[(x - mean)^2], in float32.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.linen import dtypes
from flax.typing import Dtype, Initializer


def check_groups(channels: int, num_groups: int) -> None:
  if num_groups < 1 or channels % num_groups:
    raise ValueError(f"{num_groups} groups do not divide {channels} channels; choose a "
                     f"divisor of {channels} (vqjax.models.taming.group_count picks one)")


def _group_means(per_channel, num_groups: int):
  """[B, C] -> [B, num_groups]: the mean of each group's channels."""
  batch, channels = per_channel.shape
  return per_channel.reshape(batch, num_groups, channels // num_groups).mean(-1)


def _per_channel(group_values, channels: int):
  """[B, num_groups] -> [B, C]: each group's value repeated over its channels."""
  return jnp.repeat(group_values, channels // group_values.shape[-1], axis=-1)


def group_statistics(x, num_groups: int):
  """(mean, variance) of each example's groups of channels over all positions: float32
  [B, num_groups] each, for x [B, ..., C] with num_groups dividing C."""
  channels = x.shape[-1]
  check_groups(channels, num_groups)
  flat = x.reshape(x.shape[0], -1, channels).astype(jnp.float32)
  mean = _group_means(jnp.mean(flat, axis=1), num_groups)
  centred = flat - _per_channel(mean, channels)[:, None, :]
  variance = _group_means(jnp.mean(jnp.square(centred), axis=1), num_groups)
  return mean, variance


class GroupNorm(nn.Module):
  """nn.GroupNorm(num_groups, epsilon) over x [B, ..., C]: parameters 'scale' (ones) and
  'bias' (zeros) of shape [C] as nn.GroupNorm's, so its checkpoints load unchanged;
  statistics in float32; the output in `dtype` (default: that of x and the parameters)."""
  num_groups: int = 32
  epsilon: float = 1e-6
  dtype: Dtype | None = None
  param_dtype: Dtype = jnp.float32
  scale_init: Initializer = nn.initializers.ones
  bias_init: Initializer = nn.initializers.zeros

  @nn.compact
  def __call__(self, x):
    channels = x.shape[-1]
    check_groups(channels, self.num_groups)
    scale = self.param("scale", self.scale_init, (channels,), self.param_dtype)
    bias = self.param("bias", self.bias_init, (channels,), self.param_dtype)
    mean, variance = group_statistics(x, self.num_groups)
    inverse = jax.lax.rsqrt(variance + self.epsilon)
    shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (channels,)
    multiplier = (_per_channel(inverse, channels) * scale).reshape(shape)
    shift = (bias - _per_channel(mean * inverse, channels) * scale).reshape(shape)
    dtype = dtypes.canonicalize_dtype(x, scale, bias, dtype=self.dtype)
    return (x.astype(jnp.float32) * multiplier + shift).astype(dtype)
