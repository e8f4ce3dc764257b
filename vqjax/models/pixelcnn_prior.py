"""Gated PixelCNN prior (van den Oord et al. 2016, "Conditional Image Generation with
PixelCNN Decoders") over token grids [B, H, W] = [B, *grid_shape] of int32 tokens in
[0, codebook_size).

    tokens -> embedding -> num_layers gated layers (vertical + horizontal stack) -> logits

Causality without a blind spot, in raster order (row by row, left to right):
  vertical stack    a (k//2 + 1) x k conv over the rows above and the current row, so
                    position (i, j) sees rows <= i, columns j - k//2 .. j + k//2
  vertical -> horizontal
                    the vertical features are shifted down one row before a 1x1 conv
                    adds them to the horizontal stack, so (i, j) gets rows < i only,
                    the upper-right region included
  horizontal stack  a 1 x (k//2 + 1) conv over columns j - k//2 .. j of the current row.
                    The first layer has mask type 'A': its input (the embedding) is
                    shifted right one column, so it excludes the current position; later
                    layers have type 'B' (their inputs already exclude it) and a residual
                    connection
Both stacks use gated activations tanh(a) * sigmoid(b); with num_classes > 0, a learned
per-class bias is added to a and b inside every gate. After the last layer,
relu -> 1x1 conv -> relu -> 1x1 conv to codebook_size gives the logits, returned in float32
and raster order [B, H * W, K] like the transformer prior. The receptive field grows by
k//2 rows and columns per layer: every earlier position reaches position t once
num_layers * (k // 2) >= max(W - 1, H - 2); shallower stacks see a window above and left.

The fields and call are the transformer prior's (vqjax.models.TransformerPrior):
codebook_size, grid_shape, num_classes (0: unconditional), label_dropout_rate (the null class of classifier-free guidance,
vqjax.models.conditioning) and condition_codebook_size,
which must be 0 (no top-grid condition: the PixelCNN cannot be a VQ-VAE-2 bottom prior).
It has no key-value cache, so vqjax.sampling samples it by recomputing the whole grid at
every position.
"""
from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.typing import Dtype

from vqjax.models import conditioning


def _shift_down(x):
  """[B, H, W, C] moved down one row (row 0 becomes zeros)."""
  return jnp.pad(x, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]


def _shift_right(x):
  """[B, H, W, C] moved right one column (column 0 becomes zeros)."""
  return jnp.pad(x, ((0, 0), (0, 0), (1, 0), (0, 0)))[:, :, :-1]


def _gate(x, bias):
  """tanh(a) * sigmoid(b) of x's two channel halves, each plus its half of bias."""
  if bias is not None:
    x = x + bias[:, None, None, :].astype(x.dtype)
  a, b = jnp.split(x, 2, axis=-1)
  return jnp.tanh(a) * jax.nn.sigmoid(b)


class GatedLayer(nn.Module):
  """One layer of both stacks: (vertical, horizontal, class bias) -> (vertical, horizontal)."""
  channels: int
  kernel_size: int
  first: bool  # mask type 'A' and no residual connection
  num_classes: int = 0  # rows of the class biases (the null class included)
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, vertical, horizontal, labels):
    half = self.kernel_size // 2
    conv = functools.partial(nn.Conv, padding="VALID", dtype=self.dtype,
                             param_dtype=self.param_dtype)
    v_in = jnp.pad(vertical, ((0, 0), (half, 0), (half, half), (0, 0)))
    v_features = conv(2 * self.channels, (half + 1, self.kernel_size), name="vertical")(v_in)
    h_in = _shift_right(horizontal) if self.first else horizontal
    h_in = jnp.pad(h_in, ((0, 0), (0, 0), (half, 0), (0, 0)))
    h_features = conv(2 * self.channels, (1, half + 1), name="horizontal")(h_in)
    h_features = h_features + conv(2 * self.channels, (1, 1), name="vertical_to_horizontal")(
        _shift_down(v_features))
    v_bias = h_bias = None
    if self.num_classes:
      embed = functools.partial(nn.Embed, self.num_classes, 2 * self.channels,
                                param_dtype=self.param_dtype)
      v_bias, h_bias = embed(name="vertical_class_bias")(labels), embed(
          name="horizontal_class_bias")(labels)
    vertical = _gate(v_features, v_bias)
    h_out = conv(self.channels, (1, 1), name="horizontal_out")(_gate(h_features, h_bias))
    return vertical, h_out if self.first else horizontal + h_out


class GatedPixelCNN(nn.Module):
  """Gated PixelCNN over token grids [B, *grid_shape]:
  `__call__(tokens, *, labels=None, condition=None, train)` -> float32 logits
  [B, H * W, codebook_size] in raster order, logits[:, t] predicting token t from tokens
  0 .. t-1 (and the label). labels: int32 [B] when num_classes > 0; condition must be None
  (condition_codebook_size is 0). The model has no dropout: train only drops labels to the
  null class when label_dropout_rate > 0 (rng stream 'dropout').
  """
  codebook_size: int
  grid_shape: tuple[int, int]
  hidden_channels: int = 128
  num_layers: int = 12
  kernel_size: int = 3
  num_classes: int = 0              # > 0: class-conditional, labels in [0, num_classes)
  condition_codebook_size: int = 0  # must be 0: the PixelCNN takes no top-grid condition
  label_dropout_rate: float = 0.0   # > 0: a null class for guidance (models.conditioning)
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @property
  def length(self) -> int:
    return self.grid_shape[0] * self.grid_shape[1]

  def setup(self):
    for name in ("codebook_size", "hidden_channels", "num_layers"):
      value = getattr(self, name)
      if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} is {value!r}; it must be an int >= 1")
    if not isinstance(self.kernel_size, int) or self.kernel_size < 3 or self.kernel_size % 2 == 0:
      raise ValueError(f"kernel_size is {self.kernel_size!r}; it must be an odd int >= 3, "
                       "e.g. 3 or 5")
    if not isinstance(self.num_classes, int) or self.num_classes < 0:
      raise ValueError(f"num_classes is {self.num_classes!r}; it must be an int >= 1, or 0 "
                       "for an unconditional prior")
    if self.condition_codebook_size:
      raise ValueError(f"condition_codebook_size is {self.condition_codebook_size!r} but the "
                       "GatedPixelCNN takes no top-grid condition; use a TransformerPrior "
                       "for a VQ-VAE-2 bottom prior, or condition_codebook_size=0")
    self.embedding = nn.Embed(self.codebook_size, self.hidden_channels,
                              param_dtype=self.param_dtype)
    self.layers = [GatedLayer(self.hidden_channels, self.kernel_size, first=i == 0,
                              num_classes=conditioning.label_rows(
                                  self.num_classes, self.label_dropout_rate),
                              dtype=self.dtype,
                              param_dtype=self.param_dtype, name=f"layer_{i}")
                   for i in range(self.num_layers)]
    self.hidden = nn.Conv(self.hidden_channels, (1, 1), dtype=self.dtype,
                          param_dtype=self.param_dtype)
    self.logits = nn.Conv(self.codebook_size, (1, 1), dtype=self.dtype,
                          param_dtype=self.param_dtype)

  def __call__(self, tokens, *, labels=None, condition=None, train: bool) -> jax.Array:
    if tokens.ndim != 3 or not jnp.issubdtype(tokens.dtype, jnp.integer):
      raise ValueError(f"tokens must be an integer token grid [B, H, W]; got {tokens.dtype} "
                       f"{tokens.shape} (flatten residual levels or pick one level first)")
    if tokens.shape[1:] != tuple(self.grid_shape):
      raise ValueError(f"tokens have grid {tokens.shape[1:]} but the prior was built for "
                       f"{tuple(self.grid_shape)}; build it with grid_shape={tokens.shape[1:]}")
    if condition is not None:
      raise ValueError("a condition (top grid) was given to a GatedPixelCNN, which takes "
                       "none; pass condition=None, or use a TransformerPrior with "
                       "condition_codebook_size > 0")
    labels = self._check_labels(labels, tokens.shape[0])
    labels = conditioning.drop_labels(self, labels, num_classes=self.num_classes,
                                      label_dropout_rate=self.label_dropout_rate, train=train)
    return self.embedded_logits(self.embedding(tokens), labels=labels)

  def embedded_logits(self, embedded, *, labels=None) -> jax.Array:
    """Logits [B, H * W, K] from embedded tokens [B, H, W, hidden_channels]; lets tests
    and tools take gradients with respect to the input."""
    labels = self._check_labels(labels, embedded.shape[0])
    x = embedded.astype(self.dtype)
    vertical, horizontal = x, x
    for layer in self.layers:
      vertical, horizontal = layer(vertical, horizontal, labels)
    x = self.logits(nn.relu(self.hidden(nn.relu(horizontal))))
    batch, height, width, _ = x.shape
    return x.astype(jnp.float32).reshape(batch, height * width, self.codebook_size)

  def _check_labels(self, labels, batch: int):
    if not self.num_classes:
      if labels is not None:
        raise ValueError("labels were given to an unconditional prior; build it with "
                         "num_classes=<number of classes>, or pass labels=None")
      return None
    if labels is None:
      raise ValueError(f"this prior is conditioned on {self.num_classes} classes; pass "
                       "labels=int32 [B], or build it with num_classes=0")
    if labels.shape != (batch,):
      raise ValueError(f"labels have shape {labels.shape}; they must be [B] = ({batch},), "
                       "one class per token grid")
    return labels


# Test-sized prior: 3 layers of 16 channels, 16 codes on a 4x4 grid (3 layers of kernel 3
# are the fewest that reach every earlier position of a 4x4 grid).
TinyGatedPixelCNN = functools.partial(
    GatedPixelCNN, codebook_size=16, grid_shape=(4, 4), hidden_channels=16, num_layers=3)
