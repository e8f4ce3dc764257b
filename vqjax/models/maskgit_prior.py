"""MaskGIT prior (Chang et al. 2022): a bidirectional transformer over token grids with a
mask token, trained to predict masked tokens from the visible ones and sampled by
parallel decoding (vqjax.maskgit, wired by vqjax.sampling).

The grid [B, H, W] holds int32 tokens in [0, codebook_size] where codebook_size is the
mask token (`mask_token_id`). Every position's input is its token's embedding plus its
learned row and column embeddings; no position is hidden from any other.
`__call__(tokens, *, labels=None, condition=None, train)` returns float32 logits
[B, H * W, codebook_size] over the real codes at every position (the loss reads only the
masked ones).

Conditioning, as the other priors take it (vqjax.models.TransformerPrior):
  labels     (num_classes > 0) a class token is put before the sequence, as maskgit does;
             every position attends to it. label_dropout_rate > 0 adds the null class of
             classifier-free guidance (vqjax.models.conditioning).
  condition  (condition_codebook_size > 0) VQ-VAE-2's bottom prior: the top grid's
             embedding, upsampled by repetition, is added to every bottom position's input.
mask_schedule names the schedule gamma of vqjax.maskgit.SCHEDULES that training masks by
and sampling decodes by (default cosine).
"""
from __future__ import annotations

import functools

import flax.linen as nn
import jax.numpy as jnp
from flax.typing import Dtype

from vqjax.models import conditioning
from vqjax.models.transformer_prior import Block, per_position

_INIT = nn.initializers.normal(stddev=0.02)
MASK_SCHEDULES = ("cosine", "linear", "square")  # vqjax.maskgit.SCHEDULES' names


class MaskGITPrior(nn.Module):
  """Bidirectional masked-token prior over token grids [B, *grid_shape] (see the module
  docstring). labels: int32 [B] when num_classes > 0 (the null class num_classes too when
  label_dropout_rate > 0); condition: int32 top grid [B, H / s, W / s] when
  condition_codebook_size > 0. train=True enables dropout and label dropout ('dropout')."""
  codebook_size: int
  grid_shape: tuple[int, int]
  num_layers: int = 4
  embed_dim: int = 256
  num_heads: int = 8
  mlp_ratio: int = 4
  dropout_rate: float = 0.0
  num_classes: int = 0              # > 0: class-conditional, labels in [0, num_classes)
  condition_codebook_size: int = 0  # > 0: conditioned on a top grid with this many codes
  label_dropout_rate: float = 0.0   # > 0: a null class for guidance (models.conditioning)
  mask_schedule: str = "cosine"     # of training and decoding: cosine, linear or square
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @property
  def length(self) -> int:
    return self.grid_shape[0] * self.grid_shape[1]

  @property
  def mask_token_id(self) -> int:
    return self.codebook_size

  def setup(self):
    if self.embed_dim % self.num_heads:
      raise ValueError(f"embed_dim {self.embed_dim} is not divisible by num_heads "
                       f"{self.num_heads}; use an embed_dim that is a multiple of it")
    if self.mask_schedule not in MASK_SCHEDULES:
      raise ValueError(f"unknown mask_schedule {self.mask_schedule!r}; choose one of "
                       f"{', '.join(map(repr, MASK_SCHEDULES))}")
    embed = dict(features=self.embed_dim, dtype=self.dtype, param_dtype=self.param_dtype,
                 embedding_init=_INIT)
    height, width = self.grid_shape
    self.token_embed = nn.Embed(self.codebook_size + 1, **embed)  # + the mask token
    self.row_embed = nn.Embed(height, **embed)
    self.column_embed = nn.Embed(width, **embed)
    if self.num_classes:
      self.class_embed = nn.Embed(
          conditioning.label_rows(self.num_classes, self.label_dropout_rate), **embed)
    if self.condition_codebook_size:
      self.condition_embed = nn.Embed(self.condition_codebook_size, **embed)
    self.embed_norm = nn.LayerNorm(dtype=self.dtype, param_dtype=self.param_dtype)
    self.embed_dropout = nn.Dropout(self.dropout_rate)
    self.blocks = [Block(self.embed_dim, self.num_heads, self.mlp_ratio * self.embed_dim,
                         self.dropout_rate, dtype=self.dtype, param_dtype=self.param_dtype,
                         causal=False, name=f"block_{i}")
                   for i in range(self.num_layers)]
    self.final_norm = nn.LayerNorm(dtype=self.dtype, param_dtype=self.param_dtype)
    self.head = nn.Dense(self.codebook_size, dtype=self.dtype, param_dtype=self.param_dtype,
                         kernel_init=_INIT)

  def __call__(self, tokens, *, labels=None, condition=None, train: bool):
    if tokens.ndim != 3 or tokens.shape[1:] != tuple(self.grid_shape):
      raise ValueError(f"tokens have shape {tokens.shape} but the prior was built for grids "
                       f"[B, {', '.join(map(str, self.grid_shape))}]; build it with "
                       f"grid_shape={tokens.shape[1:]}")
    conditioning.check_conditioning(
        num_classes=self.num_classes, condition_codebook_size=self.condition_codebook_size,
        grid_shape=self.grid_shape, labels=labels, condition=condition,
        batch_size=tokens.shape[0])
    labels = conditioning.drop_labels(self, labels, num_classes=self.num_classes,
                                      label_dropout_rate=self.label_dropout_rate, train=train)
    positions = jnp.arange(self.length)
    rows, columns = positions // self.grid_shape[1], positions % self.grid_shape[1]
    x = self.token_embed(tokens.reshape(tokens.shape[0], -1))
    x = x + self.row_embed(rows) + self.column_embed(columns)
    if condition is not None:
      x = x + conditioning.upsampled_condition(self.condition_embed, condition,
                                               self.grid_shape, rows, columns)
    if labels is not None:  # the class token, before the grid
      x = jnp.concatenate([self.class_embed(labels)[:, None].astype(x.dtype), x], axis=1)
    x = self.embed_dropout(self.embed_norm(x), deterministic=not train)
    for block in self.blocks:
      x = block(x, deterministic=not train)
    x = x[:, -self.length:]  # drop the class token
    return per_position(self.head, self.final_norm(x)).astype(jnp.float32)


# Test-sized prior: 2 layers, width 32, 4 heads, 16 codes on a 4x4 grid.
TinyMaskGITPrior = functools.partial(
    MaskGITPrior, codebook_size=16, grid_shape=(4, 4), num_layers=2, embed_dim=32,
    num_heads=4)
