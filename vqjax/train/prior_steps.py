"""Per-device steps of an autoregressive prior over token grids, written once for one
device and a pod alike (cross-device means and sums go through `axis_name`, the pmap axis
of vqjax.train.parallel).

    prior_train_step(state, batch)  cross-entropy of the next-token logits against the grid
                                    in raster order; gradients and metrics averaged over
                                    axis_name; dropout keys from the state
    prior_eval_step(state, batch)   summed NLL (nats) over the valid grids of batch['mask']

A batch holds 'tokens' int32 [B, h, w], 'label' int32 [B] (read when the prior is
class-conditional) and, for a VQ-VAE-2 bottom prior, 'condition' (the top grid). The
prior is any model with `__call__(tokens, *, labels=None, condition=None, train)` ->
logits [B, h*w, K]
(vqjax.models.TransformerPrior, GatedPixelCNN); the state is a TrainState with no
quantizer state. A MaskGIT prior trains on masked tokens instead (vqjax.train.maskgit_steps).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from vqjax import collectives
from vqjax.train.state import TrainState, step_key


def is_class_conditional(model: nn.Module) -> bool:
  """Whether the prior takes labels (num_classes > 0)."""
  return bool(getattr(model, "num_classes", None))


def prior_logits(model: nn.Module, variables, batch, *, train: bool, rngs=None):
  """Float32 logits [B, h*w, K] of the batch's grids, with its labels and condition."""
  inputs = {}
  if is_class_conditional(model):
    inputs["labels"] = batch["label"]
  if "condition" in batch:
    inputs["condition"] = batch["condition"]
  return model.apply(variables, batch["tokens"], train=train, rngs=rngs, **inputs)


def token_nll(logits, tokens):
  """Float32 NLL in nats [B, h*w] of the grids tokens [B, h, w] in raster order."""
  return optax.softmax_cross_entropy_with_integer_labels(
      logits.astype(jnp.float32), tokens.reshape(tokens.shape[0], -1))


def prior_train_step(state: TrainState, batch, *, model: nn.Module,
                     optimizer: optax.GradientTransformation, axis_name: str | None = "batch"):
  """One update on this device's share of the batch; returns (state, metrics).

  loss: mean NLL per token (nats); metrics (loss, bits_per_token, grad_norm) are means over
  the global batch. Each device draws its own dropout masks: the step's key folded with
  its axis_index.
  """
  key = step_key(state)
  if axis_name is not None:
    key = jax.random.fold_in(key, jax.lax.axis_index(axis_name))

  def loss_fn(params):
    logits = prior_logits(model, {"params": params}, batch, train=True, rngs={"dropout": key})
    return jnp.mean(token_nll(logits, batch["tokens"]))

  loss, grads = jax.value_and_grad(loss_fn)(state.params)
  # One all-reduce: two independent ones may deadlock XLA:CPU.
  grads, loss = collectives.pmean((grads, loss), axis_name)
  updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
  state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                        opt_state=opt_state)
  metrics = {"loss": loss, "bits_per_token": loss / jnp.log(2.0),
             "grad_norm": optax.tree.norm(grads)}
  return state, metrics


def prior_eval_step(state: TrainState, batch, *, model: nn.Module,
                    axis_name: str | None = "batch"):
  """Sums over the valid grids (batch['mask']) on all devices: {'count': grids, 'tokens':
  tokens, 'nll': NLL in nats}."""
  mask = batch["mask"].astype(jnp.float32)
  logits = prior_logits(model, {"params": state.params}, batch, train=False)
  per_grid = jnp.sum(token_nll(logits, batch["tokens"]), axis=-1)
  length = logits.shape[1]
  sums = {"count": jnp.sum(mask), "tokens": jnp.sum(mask) * length,
          "nll": jnp.sum(per_grid * mask)}
  sums = collectives.psum(sums, axis_name)
  return sums
