"""Tests for vqjax.models.taming: the VQGAN encoder, decoder and their blocks."""
import functools
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vqjax.models.taming import (AttentionBlock, Downsample, ResnetBlock, TamingDecoder,
                                 TamingEncoder, Upsample, group_count)

TINY = dict(channels=16, num_res_blocks=1, attention_resolutions=(4,))

# One compilation per test: op-by-op dispatch compiles every op; -O0 halves compile time.
_jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})


def _key(seed):
  # rbg keys (XLA's RngBitGenerator) compile in a fraction of the time of threefry keys.
  return jax.random.key(seed, impl="rbg")


def _images(shape, seed=0):
  return jnp.asarray(np.random.default_rng(seed).uniform(-1.0, 1.0, shape), jnp.float32)


def _abstract(module, shape, **kwargs):
  """(variables, output) as shapes and dtypes: traced, never compiled."""
  x = jax.ShapeDtypeStruct(shape, jnp.float32)
  variables = jax.eval_shape(lambda x: module.init(_key(0), x, **kwargs), x)
  return variables, jax.eval_shape(lambda v, x: module.apply(v, x, **kwargs), variables, x)


def _attention_blocks(params):
  return sorted(name for name in params if "attn" in name)


def test_group_count_is_32_or_the_largest_divisor_below():
  for channels, groups in [(128, 32), (512, 32), (96, 32), (48, 24), (40, 20), (20, 20),
                           (33, 11), (3, 3), (1, 1)]:
    assert group_count(channels) == groups, channels


def test_resnet_block_normalizes_over_the_chosen_groups():
  # 48 channels are not divisible by 32: the block normalizes over 24 groups of 2.
  x = _images((2, 4, 4, 48)) * jnp.arange(1.0, 49.0)
  block = ResnetBlock(out_channels=8)

  @_jit
  def run(x):
    variables = block.init(_key(0), x, train=False)
    return variables, block.apply(variables, x, train=False, capture_intermediates=True)[1]

  variables, state = run(x)
  grouped = np.asarray(x).reshape(2, 4, 4, 24, 2)
  mean = grouped.mean(axis=(1, 2, 4), keepdims=True)
  var = grouped.var(axis=(1, 2, 4), keepdims=True)
  expected = ((grouped - mean) / np.sqrt(var + 1e-6)).reshape(x.shape)
  np.testing.assert_allclose(state["intermediates"]["norm1"]["__call__"][0], expected,
                             atol=1e-4)
  assert "shortcut" in variables["params"]  # 48 -> 8 channels
  assert "shortcut" not in _abstract(ResnetBlock(), x.shape, train=False)[0]["params"]


def test_resnet_block_dropout_only_in_train_mode():
  x = _images((2, 4, 4, 8))
  block = ResnetBlock(dropout_rate=0.5)

  @_jit
  def run(x):
    variables = block.init(_key(0), x, train=False)
    # Eval needs no rng.
    outputs = [block.apply(variables, x, train=False),
               ResnetBlock().apply(variables, x, train=False)]
    return outputs + [block.apply(variables, x, train=True, rngs={"dropout": _key(s)})
                      for s in (1, 2)]

  evaluated, dropout_free, first, second = run(x)
  chex.assert_trees_all_close(evaluated, dropout_free)  # eval matches the dropout-free block
  assert float(jnp.abs(first - second).max()) > 0


def test_attention_block_matches_single_head_attention_over_all_positions():
  x = _images((2, 4, 3, 8))
  block = AttentionBlock()
  variables = _jit(block.init)(_key(0), x)
  params = jax.tree.map(np.asarray, variables["params"])
  flat = np.asarray(x).reshape(2, 12, 8)
  # GroupNorm with 8 groups of one channel: each channel normalized over the positions.
  h = (flat - flat.mean(axis=1, keepdims=True)) / np.sqrt(flat.var(axis=1, keepdims=True) + 1e-6)
  dense = lambda name, v: v @ params[name]["kernel"][0, 0] + params[name]["bias"]
  q, k, v = dense("q", h), dense("k", h), dense("v", h)
  logits = q @ k.transpose(0, 2, 1) / np.sqrt(8)
  weights = np.exp(logits - logits.max(-1, keepdims=True))
  weights /= weights.sum(-1, keepdims=True)
  expected = flat + dense("proj_out", weights @ v)
  np.testing.assert_allclose(_jit(block.apply)(variables, x), expected.reshape(x.shape),
                             atol=1e-4)


def test_downsample_is_taming_pad_then_valid_stride_2_conv():
  x = _images((1, 8, 6, 4))
  block = Downsample()

  @_jit
  def run(x):
    variables = block.init(_key(0), x)
    conv = variables["params"]["conv"]
    padded = jnp.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))
    expected = jax.lax.conv_general_dilated(
        padded, conv["kernel"], (2, 2), "VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC")) + conv["bias"]
    return block.apply(variables, x), expected

  out, expected = run(x)
  chex.assert_shape(out, (1, 4, 3, 4))
  chex.assert_trees_all_close(out, expected, atol=1e-5)


def test_upsample_is_nearest_2x_then_3x3_conv():
  x = _images((1, 3, 2, 4))
  block = Upsample()

  @_jit
  def run(x):
    variables = block.init(_key(0), x)
    conv = variables["params"]["conv"]
    nearest = jax.image.resize(x, (1, 6, 4, 4), "nearest")
    expected = jax.lax.conv_general_dilated(
        nearest, conv["kernel"], (1, 1), "SAME",
        dimension_numbers=("NHWC", "HWIO", "NHWC")) + conv["bias"]
    return block.apply(variables, x), expected

  chex.assert_trees_all_close(*run(x), atol=1e-5)


@pytest.mark.parametrize("multipliers,size,grid", [((1, 1, 2, 2), 32, 4),
                                                   ((1, 1, 1, 1, 2), 32, 2)])
def test_encoder_and_decoder_shapes_for_factors_8_and_16(multipliers, size, grid):
  encoder = TamingEncoder(channel_multipliers=multipliers, z_channels=12, **TINY)
  _, z = _abstract(encoder, (2, size, size, 3), train=False)
  chex.assert_shape(z, (2, grid, grid, 12))
  decoder = TamingDecoder(channel_multipliers=multipliers, **TINY)
  _, features = _abstract(decoder, (2, grid, grid, 12), train=False)
  chex.assert_shape(features, (2, size, size, 16 * multipliers[0]))


def test_attention_only_at_the_configured_resolutions():
  # Sides 32, 16, 8, 4 at the four levels; attention at 8 is level 2 only.
  multipliers = (1, 1, 2, 2)
  encoder = TamingEncoder(channels=16, channel_multipliers=multipliers, num_res_blocks=2,
                          attention_resolutions=(8,), z_channels=8)
  variables, _ = _abstract(encoder, (1, 32, 32, 3), train=False)
  assert _attention_blocks(variables["params"]) == ["down2_attn0", "down2_attn1", "mid_attn"]
  decoder = TamingDecoder(channels=16, channel_multipliers=multipliers, num_res_blocks=2,
                          attention_resolutions=(8, 32))
  variables, _ = _abstract(decoder, (1, 4, 4, 8), train=False)
  assert _attention_blocks(variables["params"]) == [
      "mid_attn", "up0_attn0", "up0_attn1", "up0_attn2", "up2_attn0", "up2_attn1", "up2_attn2"]
  # The side is read from the input: 16x16 images put the side-8 level at level 1.
  variables, _ = _abstract(encoder, (1, 16, 16, 3), train=False)
  assert _attention_blocks(variables["params"]) == ["down1_attn0", "down1_attn1", "mid_attn"]


def test_block_widths_follow_the_multipliers():
  encoder = TamingEncoder(channel_multipliers=(1, 2), z_channels=8, **TINY)
  variables, _ = _abstract(encoder, (1, 8, 8, 3), train=False)
  params = variables["params"]
  chex.assert_shape(params["down0_block0"]["conv2"]["kernel"], (3, 3, 16, 16))
  chex.assert_shape(params["down1_block0"]["conv2"]["kernel"], (3, 3, 32, 32))
  chex.assert_shape(params["down1_block0"]["shortcut"]["kernel"], (1, 1, 16, 32))
  chex.assert_shape(params["conv_out"]["kernel"], (3, 3, 32, 8))


@pytest.mark.parametrize("fields,message", [
    (dict(channel_multipliers=()), "channel_multipliers is empty"),
    (dict(channel_multipliers=(1, 0)), "channel_multipliers is (1, 0); every multiplier must"),
    (dict(channels=0), "channels is 0; it must be a positive int"),
    (dict(num_res_blocks=0), "num_res_blocks is 0; it must be a positive int"),
    (dict(z_channels=0), "z_channels is 0; it must be a positive int"),
    (dict(attention_resolutions=(0,)), "attention_resolutions is (0,); give positive"),
    (dict(dropout_rate=1.0), "dropout_rate is 1.0; it must be in [0, 1)"),
])
def test_invalid_architecture(fields, message):
  encoder = TamingEncoder(**{**TINY, "channel_multipliers": (1, 2), "z_channels": 8, **fields})
  with pytest.raises(ValueError, match=re.escape(message)):
    _abstract(encoder, (1, 8, 8, 3), train=False)
