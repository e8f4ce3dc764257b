"""Gated PixelCNN prior (van den Oord et al. 2016, "Conditional Image Generation with
PixelCNN Decoders") over token grids [B, H, W] of int32 tokens in [0, num_tokens).

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
Both stacks use gated activations tanh(a) * sigmoid(b); with num_classes, a learned
per-class bias is added to a and b inside every gate. After the last layer,
relu -> 1x1 conv -> relu -> 1x1 conv to num_tokens gives the logits, returned in float32
and raster order [B, H * W, K] like the transformer prior. The receptive field grows by
k//2 rows and columns per layer: every earlier position reaches position t once
num_layers * (k // 2) >= max(W - 1, H - 2); shallower stacks see a window above and left.

`sample_pixelcnn` draws token grids one raster position at a time inside a compiled
lax.fori_loop, recomputing the whole network at every step.
"""
from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.typing import Dtype


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
  num_classes: int | None = None
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
    if self.num_classes is not None:
      embed = functools.partial(nn.Embed, self.num_classes, 2 * self.channels,
                                param_dtype=self.param_dtype)
      v_bias, h_bias = embed(name="vertical_class_bias")(labels), embed(
          name="horizontal_class_bias")(labels)
    vertical = _gate(v_features, v_bias)
    h_out = conv(self.channels, (1, 1), name="horizontal_out")(_gate(h_features, h_bias))
    return vertical, h_out if self.first else horizontal + h_out


class GatedPixelCNN(nn.Module):
  """Gated PixelCNN over token grids: `__call__(tokens, *, labels=None, train)` ->
  float32 logits [B, H * W, num_tokens] in raster order, logits[:, t] predicting token t
  from tokens 0 .. t-1 (and the label). train is accepted for the priors' common
  interface; the model has no dropout, so it changes nothing.
  """
  num_tokens: int
  hidden_channels: int = 128
  num_layers: int = 12
  kernel_size: int = 3
  num_classes: int | None = None
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def setup(self):
    for name in ("num_tokens", "hidden_channels", "num_layers"):
      value = getattr(self, name)
      if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} is {value!r}; it must be an int >= 1")
    if not isinstance(self.kernel_size, int) or self.kernel_size < 3 or self.kernel_size % 2 == 0:
      raise ValueError(f"kernel_size is {self.kernel_size!r}; it must be an odd int >= 3, "
                       "e.g. 3 or 5")
    if self.num_classes is not None and (not isinstance(self.num_classes, int)
                                         or self.num_classes < 1):
      raise ValueError(f"num_classes is {self.num_classes!r}; it must be an int >= 1, or "
                       "None for an unconditional prior")
    self.embedding = nn.Embed(self.num_tokens, self.hidden_channels,
                              param_dtype=self.param_dtype)
    self.layers = [GatedLayer(self.hidden_channels, self.kernel_size, first=i == 0,
                              num_classes=self.num_classes, dtype=self.dtype,
                              param_dtype=self.param_dtype, name=f"layer_{i}")
                   for i in range(self.num_layers)]
    self.hidden = nn.Conv(self.hidden_channels, (1, 1), dtype=self.dtype,
                          param_dtype=self.param_dtype)
    self.logits = nn.Conv(self.num_tokens, (1, 1), dtype=self.dtype,
                          param_dtype=self.param_dtype)

  def __call__(self, tokens, *, labels=None, train: bool) -> jax.Array:
    del train  # no dropout
    if tokens.ndim != 3 or not jnp.issubdtype(tokens.dtype, jnp.integer):
      raise ValueError(f"tokens must be an integer token grid [B, H, W]; got {tokens.dtype} "
                       f"{tokens.shape} (flatten residual levels or pick one level first)")
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
    return x.astype(jnp.float32).reshape(batch, height * width, self.num_tokens)

  def _check_labels(self, labels, batch: int):
    if self.num_classes is None:
      if labels is not None:
        raise ValueError("labels were given to an unconditional prior; build it with "
                         "num_classes=<number of classes>, or pass labels=None")
      return None
    if labels is None:
      raise ValueError(f"this prior is conditioned on {self.num_classes} classes; pass "
                       "labels=int32 [B], or build it with num_classes=None")
    if labels.shape != (batch,):
      raise ValueError(f"labels have shape {labels.shape}; they must be [B] = ({batch},), "
                       "one class per token grid")
    return labels


def sample_pixelcnn(model: GatedPixelCNN, variables, key, *, batch: int, height: int,
                    width: int, labels=None, temperature: float = 1.0) -> jax.Array:
  """Draws int32 token grids [batch, height, width] in raster order, one position per
  step of a compiled lax.fori_loop (the network recomputed at each). The same key gives
  the same grids; position t samples with jax.random.fold_in(key, t). labels: int32
  [batch] for a conditional model. temperature > 0 divides the logits.
  """
  for name, value in (("batch", batch), ("height", height), ("width", width)):
    if not isinstance(value, int) or value < 1:
      raise ValueError(f"{name} is {value!r}; it must be an int >= 1")
  if isinstance(temperature, (int, float)) and temperature <= 0:
    raise ValueError(f"temperature is {temperature}; it must be > 0 (1 samples the model's "
                     "distribution, smaller values sharpen it)")
  if labels is not None:
    labels = jnp.asarray(labels, jnp.int32)
  return _sample(model, variables, key, labels, jnp.asarray(temperature, jnp.float32),
                 batch=batch, height=height, width=width)


@functools.partial(jax.jit, static_argnames=("model", "batch", "height", "width"))
def _sample(model, variables, key, labels, temperature, *, batch, height, width):
  def step(t, tokens):
    logits = model.apply(variables, tokens.reshape(batch, height, width), labels=labels,
                         train=False)[:, t]
    drawn = jax.random.categorical(jax.random.fold_in(key, t), logits / temperature)
    return tokens.at[:, t].set(drawn.astype(jnp.int32))

  tokens = jax.lax.fori_loop(0, height * width, step,
                             jnp.zeros((batch, height * width), jnp.int32))
  return tokens.reshape(batch, height, width)
