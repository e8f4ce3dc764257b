"""Classifier-free guidance (Ho & Salimans 2022) as pure functions, for every
class-conditional prior with a null class (trained with label_dropout_rate > 0,
vqjax.models.conditioning); vqjax.sampling runs the guided samplers.

    guided_logits(logits [2B, ...], s)     uncond + s * (cond - uncond) of the two halves
    guidance_scale_at(s, progress, ramp)   s, or LlamaGen's linear ramp from 1 to s
    both_halves(prior, labels, condition)  the conditioning of a guided batch [2B]
    check_guidance, check_labels           the errors that name the fix
"""
from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from vqjax.models import conditioning


def check_guidance(prior, guidance_scale: Optional[float]) -> None:
  """Raises a ValueError naming the fix unless guidance_scale is None (no guidance) or a
  scale >= 0 for a prior with a null class (trained with label_dropout_rate > 0)."""
  if guidance_scale is None:
    return
  if guidance_scale < 0:
    raise ValueError(f"guidance_scale is {guidance_scale}; use a scale >= 0 (1: plain "
                     "conditional sampling, 0: unconditional, > 1: guided), or None")
  if not conditioning.has_null_class(prior):
    raise ValueError(
        f"guidance_scale was given but the prior (num_classes={prior.num_classes}, "
        f"label_dropout_rate={getattr(prior, 'label_dropout_rate', 0.0)}) has no null class; "
        "guidance needs a class-conditional prior trained with label_dropout_rate > 0 "
        "(--config.model.label_dropout_rate=0.1), or sample with guidance_scale=None")


def check_labels(prior, labels) -> None:
  """Raises a ValueError unless concrete labels lie in [0, num_classes): the null class
  (num_classes) is guidance's unconditional half, never a label to sample."""
  num_classes = getattr(prior, "num_classes", 0)
  if labels is None or not num_classes or isinstance(labels, jax.core.Tracer):
    return
  labels = np.asarray(labels)
  if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
    raise ValueError(f"labels {np.unique(labels).tolist()} are outside [0, {num_classes}); "
                     f"pass classes the prior was trained on (the null class {num_classes} "
                     "is guidance's unconditional half: use guidance_scale=0 for it)")


def guidance_scale_at(guidance_scale, progress, ramp: bool):
  """The scale at progress in (0, 1] (of positions or decoding steps): guidance_scale, or
  with ramp, LlamaGen's linear ramp 1 + (guidance_scale - 1) * progress."""
  return 1.0 + (guidance_scale - 1.0) * progress if ramp else guidance_scale


def guided_logits(logits, scale):
  """uncond + scale * (cond - uncond) of logits [2B, ...] = [cond; uncond] halves; exact
  at scale 1 (the conditional logits) and 0 (the unconditional ones)."""
  cond, uncond = jnp.split(logits, 2, axis=0)
  return jnp.where(scale == 0, uncond, cond + (scale - 1.0) * (cond - uncond))


def both_halves(prior, labels, condition):
  """The conditioning of a guided batch [2B]: the labels, then the null class; the
  condition (a bottom prior's top grid) twice."""
  null = jnp.full_like(labels, prior.num_classes)
  doubled = None if condition is None else jnp.concatenate([condition, condition])
  return jnp.concatenate([labels, null]), doubled
