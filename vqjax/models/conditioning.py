"""What every prior does with its labels and top-grid condition: the checks, and the null
class of classifier-free guidance (Ho & Salimans 2022).

A class-conditional prior (num_classes > 0) trained with label_dropout_rate p > 0 has one
more class embedding row, the null class at index num_classes: in training each label is
replaced by it with probability p (rng stream 'dropout'), so the same network also models
the unconditional distribution, and vqjax.sampling combines the two. With p = 0 (the
priors' default, and every checkpoint written before guidance existed) there is no null
row, and the parameters are those of a plain class-conditional prior.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def has_null_class(prior) -> bool:
  """Whether the prior has a null class (index num_classes) for guidance."""
  return bool(getattr(prior, "num_classes", 0)) and getattr(prior, "label_dropout_rate", 0) > 0


def label_rows(num_classes: int, label_dropout_rate: float) -> int:
  """Rows of the class embedding: the classes and, with label dropout, the null class."""
  if not 0 <= label_dropout_rate < 1:
    raise ValueError(f"label_dropout_rate is {label_dropout_rate}; use 0 <= p < 1 (0.1 is "
                     "usual for classifier-free guidance, 0 for none)")
  return num_classes + int(bool(num_classes) and label_dropout_rate > 0)


def drop_labels(module: nn.Module, labels, *, num_classes: int, label_dropout_rate: float,
                train: bool):
  """labels [B], each replaced by the null class num_classes with probability
  label_dropout_rate in training (keys from module's 'dropout' stream); as given otherwise."""
  if labels is None or not train or not num_classes or label_dropout_rate <= 0:
    return labels
  drop = jax.random.bernoulli(module.make_rng("dropout"), label_dropout_rate, labels.shape)
  return jnp.where(drop, num_classes, labels)


def check_conditioning(*, num_classes: int, condition_codebook_size: int,
                       grid_shape: tuple[int, int], labels, condition,
                       batch_size: int | None = None) -> None:
  """Raises a ValueError naming the fix unless labels ([batch_size]) are given exactly when
  num_classes > 0 and a top grid dividing grid_shape exactly when condition_codebook_size
  > 0."""
  if bool(num_classes) != (labels is not None):
    raise ValueError(f"num_classes is {num_classes} but labels were "
                     f"{'not ' if labels is None else ''}given; pass labels [B] exactly "
                     "when num_classes > 0")
  if labels is not None and batch_size is not None and labels.shape != (batch_size,):
    raise ValueError(f"labels have shape {labels.shape}; they must be [B] = ({batch_size},), "
                     "one class per token grid")
  if bool(condition_codebook_size) != (condition is not None):
    raise ValueError(f"condition_codebook_size is {condition_codebook_size} but a "
                     f"condition was {'not ' if condition is None else ''}given; pass the "
                     "top grid exactly when condition_codebook_size > 0")
  if condition is not None:
    height, width = grid_shape
    if (condition.ndim != 3 or not 0 < condition.shape[1] <= height
        or not 0 < condition.shape[2] <= width
        or height % condition.shape[1] or width % condition.shape[2]):
      raise ValueError(f"condition grid {condition.shape[1:]} does not divide the grid "
                       f"{tuple(grid_shape)}; pass a top grid [B, H / s, W / s]")


def upsampled_condition(condition_embed: nn.Module, condition, grid_shape, rows, columns):
  """The embedding of the top code above each position (rows, columns [T]): [B, T, D]."""
  row_scale = grid_shape[0] // condition.shape[1]
  column_scale = grid_shape[1] // condition.shape[2]
  return condition_embed(condition[:, rows // row_scale, columns // column_scale])
