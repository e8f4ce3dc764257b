"""Per-device steps of a MaskGIT prior (vqjax.models.MaskGITPrior), written once for one
device and a pod alike (cross-device means and sums through `axis_name`, the pmap axis
of vqjax.train.parallel).

    masked_train_step(state, batch)      per example r ~ U(0, 1), ceil(gamma(r) * N) tokens
                                         masked (the prior's mask_schedule), cross-entropy
                                         on the masked positions only (vqjax.maskgit)
    masked_eval_step(state, batch, rng)  at each fixed mask ratio, ceil(ratio * N) random
                                         tokens masked: summed NLL and correct argmax
                                         predictions over the masked tokens of the valid
                                         grids (batch['mask'])

A MaskGIT prior has no exact likelihood, so these replace the causal priors' NLL
(vqjax.train.prior_steps). Batches are prior_steps' ('tokens', 'label', 'condition').
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from vqjax import collectives
from vqjax import maskgit
from vqjax.train.prior_steps import prior_logits
from vqjax.train.state import TrainState, step_key

EVAL_MASK_RATIOS = (0.5, 0.9)


def masked_train_step(state: TrainState, batch, *, model: nn.Module,
                      optimizer: optax.GradientTransformation, label_smoothing: float = 0.0,
                      axis_name: str | None = "batch"):
  """One update on this device's share of the batch; returns (state, metrics).

  loss: mean cross-entropy (nats) of the masked tokens (with label_smoothing, if any);
  metrics (loss, masked_accuracy, mask_fraction, grad_norm) are means over devices. Each
  device draws its own masks and dropout: the step's key folded with its axis_index.
  """
  key = step_key(state)
  if axis_name is not None:
    key = jax.random.fold_in(key, jax.lax.axis_index(axis_name))
  mask_key, dropout_key = jax.random.split(key)
  tokens = batch["tokens"].reshape(batch["tokens"].shape[0], -1)
  masked, mask = maskgit.mask_tokens(mask_key, tokens, mask_token_id=model.mask_token_id,
                                     schedule=model.mask_schedule)
  inputs = {**batch, "tokens": masked.reshape(batch["tokens"].shape)}

  def loss_fn(params):
    logits = prior_logits(model, {"params": params}, inputs, train=True,
                          rngs={"dropout": dropout_key})
    loss = maskgit.masked_cross_entropy(logits, tokens, mask, label_smoothing=label_smoothing)
    return loss, logits

  (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  weights = mask.astype(jnp.float32)
  correct = (jnp.argmax(logits, axis=-1) == tokens).astype(jnp.float32)
  metrics = {"loss": loss, "masked_accuracy": jnp.sum(correct * weights) / jnp.sum(weights),
             "mask_fraction": jnp.mean(weights)}
  # One all-reduce: two independent ones may deadlock XLA:CPU.
  grads, metrics = collectives.pmean((grads, metrics), axis_name)
  updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
  state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                        opt_state=opt_state)
  return state, {**metrics, "grad_norm": optax.tree.norm(grads)}


def ratio_name(ratio: float) -> str:
  """The metric suffix of a mask ratio: 0.5 -> '0.5'."""
  return f"{ratio:g}"


def masked_eval_step(state: TrainState, batch, rng, *, model: nn.Module,
                     mask_ratios: Sequence[float] = EVAL_MASK_RATIOS,
                     axis_name: str | None = "batch"):
  """Sums over the valid grids (batch['mask']) on all devices: 'count' (grids) and, per
  ratio r of mask_ratios, 'masked_<r>' (masked tokens), 'nll_<r>' (their NLL in nats) and
  'correct_<r>' (their argmax predictions that are right). rng picks the masked positions
  (folded with each device's axis_index)."""
  if axis_name is not None:
    rng = jax.random.fold_in(rng, jax.lax.axis_index(axis_name))
  valid = batch["mask"].astype(jnp.float32)[:, None]
  tokens = batch["tokens"].reshape(batch["tokens"].shape[0], -1)
  sums = {"count": jnp.sum(valid)}
  for index, ratio in enumerate(mask_ratios):
    counts = jnp.broadcast_to(maskgit.masked_count(ratio, tokens.shape[1]), tokens.shape[:1])
    mask = maskgit.random_mask(jax.random.fold_in(rng, index), counts, tokens.shape[1])
    masked = jnp.where(mask, model.mask_token_id, tokens).reshape(batch["tokens"].shape)
    logits = prior_logits(model, {"params": state.params}, {**batch, "tokens": masked},
                          train=False)
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, tokens)
    weights = mask.astype(jnp.float32) * valid
    name = ratio_name(ratio)
    sums[f"masked_{name}"] = jnp.sum(weights)
    sums[f"nll_{name}"] = jnp.sum(nll * weights)
    sums[f"correct_{name}"] = jnp.sum((jnp.argmax(logits, -1) == tokens) * weights)
  sums = collectives.psum(sums, axis_name)
  return sums
