"""The optimizer: Adam or AdamW on a linear-warmup schedule, with global-norm clipping.

    learning rate  0 -> learning_rate linearly over warmup_steps, then cosine decay to
                   learning_rate * end_learning_rate_fraction at total_steps
                   (schedule='cosine'), or held (schedule='constant', as in the VQ-VAE paper)
    update         clip_by_global_norm(grad_clip_norm) (None: no clipping), then Adam, or
                   AdamW with decoupled weight_decay
"""
from __future__ import annotations

import inspect
from typing import Any, Mapping, NamedTuple

import optax

from vqjax.train.fields import check_known_fields

NAMES = ("adam", "adamw")
SCHEDULES = ("cosine", "constant")


class Optimizer(NamedTuple):
  transform: optax.GradientTransformation
  learning_rate: optax.Schedule  # step -> learning rate, for logging


def learning_rate_schedule(*, learning_rate: float, total_steps: int, warmup_steps: int = 0,
                           schedule: str = "cosine",
                           end_learning_rate_fraction: float = 0.0) -> optax.Schedule:
  """The schedule of the module docstring."""
  if not learning_rate > 0:
    raise ValueError(f"learning rate is {learning_rate}; it must be > 0 (the VQ-VAE paper "
                     "uses 2e-4)")
  if schedule not in SCHEDULES:
    raise ValueError(f"unknown learning-rate schedule {schedule!r}; choose one of "
                     f"{', '.join(map(repr, SCHEDULES))}")
  if not isinstance(total_steps, int) or total_steps < 1:
    raise ValueError(f"the number of training steps is {total_steps!r}; it must be an int >= 1")
  if not isinstance(warmup_steps, int) or not 0 <= warmup_steps < total_steps:
    raise ValueError(f"warmup_steps is {warmup_steps!r}; it must be an int in [0, "
                     f"{total_steps}), below the number of training steps")
  if not 0.0 <= end_learning_rate_fraction <= 1.0:
    raise ValueError(f"end_learning_rate_fraction is {end_learning_rate_fraction}; it must be "
                     "in [0, 1] (the final learning rate over the peak)")
  if schedule == "constant":
    warmup = optax.linear_schedule(0.0, learning_rate, warmup_steps)
    return optax.join_schedules([warmup, optax.constant_schedule(learning_rate)],
                                [warmup_steps])
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=learning_rate, warmup_steps=warmup_steps,
      decay_steps=total_steps, end_value=learning_rate * end_learning_rate_fraction)


def make_optimizer(*, learning_rate: float, total_steps: int, name: str = "adam",
                   warmup_steps: int = 0, schedule: str = "cosine",
                   end_learning_rate_fraction: float = 0.0, b1: float = 0.9,
                   b2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0,
                   grad_clip_norm: float | None = None) -> Optimizer:
  """The optimizer of the module docstring; its keywords are config.optimizer's fields."""
  rate = learning_rate_schedule(learning_rate=learning_rate, total_steps=total_steps,
                                warmup_steps=warmup_steps, schedule=schedule,
                                end_learning_rate_fraction=end_learning_rate_fraction)
  if name not in NAMES:
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(map(repr, NAMES))}")
  if weight_decay < 0 or (name == "adam" and weight_decay):
    raise ValueError(f"weight_decay is {weight_decay} with optimizer {name!r}; use 0 with "
                     "'adam', or a non-negative value with 'adamw'")
  if grad_clip_norm is not None and not grad_clip_norm > 0:
    raise ValueError(f"grad_clip_norm is {grad_clip_norm}; it must be > 0, or None for no "
                     "clipping")
  if name == "adam":
    update = optax.adam(rate, b1=b1, b2=b2, eps=eps)
  else:
    update = optax.adamw(rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay)
  if grad_clip_norm is not None:
    update = optax.chain(optax.clip_by_global_norm(grad_clip_norm), update)
  return Optimizer(update, rate)


def optimizer_from_config(fields: Mapping[str, Any], *, total_steps: int,
                          where: str = "config.optimizer") -> Optimizer:
  """make_optimizer from a config section (a dict or ConfigDict), its schedule over
  total_steps; unknown fields are refused, naming `where`."""
  fields = dict(fields.to_dict() if hasattr(fields, "to_dict") else fields)
  known = sorted(set(inspect.signature(make_optimizer).parameters) - {"total_steps"})
  check_known_fields(fields, known, where=where)
  return make_optimizer(total_steps=total_steps, **fields)
