"""Per-device steps, written once for one device and a pod alike: cross-device sums go
through `axis_name` (the pmap axis of vqjax.train.parallel; the model's quantizers must be
built with the same name).

    train_step(state, batch)  reconstruction MSE + the model's quantizer loss; gradients
                              and metrics averaged over axis_name; the model updates its
                              quantizer state (EMA codebooks, restarts) with the step's key
    eval_step(state, batch)   sums over the valid examples of batch['mask']: squared error,
                              PSNR and code counts per codebook
    kmeans_step(state, batch) the codebooks set by k-means on the encoder outputs of a batch
"""
from __future__ import annotations

from typing import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from vqjax import collectives
from vqjax.nn.quantizer_layers import RNG as QUANTIZER_RNG
from vqjax import losses
from vqjax.models import tokenizers
from vqjax.train.state import QUANTIZER_STATE, TrainState, step_key


def quantizer_loss(output, weights: Mapping[str, float] | None = None):
  """The model's quantizer loss, or its terms reweighted (terms not in weights keep 1)."""
  if not weights:
    return output.quantizer_loss
  unknown = sorted(set(weights) - set(output.quantizer_losses))
  if unknown:
    raise ValueError(f"quantizer_loss_weights names {unknown}, which the model does not "
                     f"report; its terms are {sorted(output.quantizer_losses)}")
  return sum((weights.get(name, 1.0) * value for name, value in output.quantizer_losses.items()),
             jnp.zeros((), jnp.float32))


def train_step(state: TrainState, batch, *, model: nn.Module,
               optimizer: optax.GradientTransformation, axis_name: str | None = "batch",
               quantizer_loss_weights: Mapping[str, float] | None = None):
  """One update on this device's share of the batch; returns (state, metrics).

  Every replica ends with the same state: gradients are averaged over axis_name, and the
  quantizers psum their statistics and share replica 0's key. Metrics are means over the
  global batch: loss, reconstruction_loss, quantizer_loss, each quantizer loss term, the
  quantizers' usage metrics (perplexity, codes_used_fraction, dead_codes) and grad_norm.
  """
  images = batch["image"]

  def loss_fn(params):
    output, updated = model.apply(
        {"params": params, **state.quantizer_state_collection}, images, train=True,
        mutable=[QUANTIZER_STATE], rngs={QUANTIZER_RNG: step_key(state)})
    mse = losses.reconstruction_loss(output.reconstruction, images, "l2")
    vq_loss = quantizer_loss(output, quantizer_loss_weights)
    return mse + vq_loss, (output, updated, mse, vq_loss)

  grads, (output, updated, mse, vq_loss) = jax.grad(loss_fn, has_aux=True)(state.params)
  grads = collectives.pmean(grads, axis_name)
  updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
  state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                        opt_state=opt_state,
                        quantizer_state=updated.get(QUANTIZER_STATE, state.quantizer_state))
  metrics = {"loss": mse + vq_loss, "reconstruction_loss": mse, "quantizer_loss": vq_loss,
             **output.quantizer_losses,
             **{name: value.astype(jnp.float32) for name, value in output.metrics.items()}}
  metrics = collectives.pmean(metrics, axis_name)
  metrics["grad_norm"] = losses.global_norm(grads)
  return state, metrics


def eval_step(state: TrainState, batch, perceptual_variables=None, *, model: nn.Module,
              value_range=(-1.0, 1.0), perceptual: nn.Module | None = None,
              axis_name: str | None = "batch"):
  """Sums over this batch's valid examples (batch['mask']) on all devices, and this
  device's reconstructions.

  Returns ({'count', 'squared_error', 'psnr', 'code_counts/<prefix>'}, reconstruction):
  squared_error and psnr are summed per-example means; code counts have shape [K], or
  [levels, K] for residual and grouped quantizers (tokenizers.quantizers_of gives prefixes).
  With a perceptual module (LPIPS, applied with perceptual_variables, on images in the
  value range mapped to [-1, 1]) the sums add 'lpips'.
  """
  images = batch["image"].astype(jnp.float32)
  mask = batch["mask"].astype(jnp.float32)
  output = model.apply(state.variables, images, train=False)
  per_example = jnp.mean(jnp.square(output.reconstruction - images), axis=(1, 2, 3))
  peak = float(value_range[1]) - float(value_range[0])
  psnr = 10.0 * jnp.log10(peak ** 2 / jnp.maximum(per_example, 1e-10))
  sums = {"count": jnp.sum(mask), "squared_error": jnp.sum(per_example * mask),
          "psnr": jnp.sum(psnr * mask)}
  if perceptual is not None:
    low, high = (float(v) for v in value_range)
    to_unit = lambda x: (x - low) * (2.0 / (high - low)) - 1.0  # LPIPS reads [-1, 1]
    distances = perceptual.apply(perceptual_variables, to_unit(output.reconstruction),
                                 to_unit(images))
    sums["lpips"] = jnp.sum(distances.astype(jnp.float32) * mask)
  quantizers = tokenizers.quantizers_of(model)
  for prefix, indices in tokenizers.token_grids(output).items():
    sums[f"code_counts/{prefix}"] = _masked_code_counts(
        indices, mask, tokenizers.codebook_size(quantizers[prefix]))
  sums = collectives.psum(sums, axis_name)
  return sums, output.reconstruction


def kmeans_step(state: TrainState, batch, key, *, model: nn.Module, iterations: int = 10):
  """The state with every codebook set by k-means on the encoder outputs of the batch
  (the global batch: the layers gather over their axis_name).

  Runs the model in evaluation mode and, as each quantizer is reached, fits its codebook
  to its input first; so VQ-VAE-2's bottom codebook fits the inputs that the fitted top
  codebook conditions. Quantizers without kmeans_initialize (FSQ, LFQ, Gumbel) are left.
  """
  def fit_before_call(next_fun, args, kwargs, context):
    module = context.module
    if context.method_name == "__call__" and hasattr(module, "kmeans_initialize"):
      module.kmeans_initialize(args[0], jax.random.fold_in(key, _path_hash(module)),
                               iterations=iterations)
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(fit_before_call):
    _, variables = model.apply(state.variables, batch["image"], train=False, mutable=True)
  state = state.replace(params=variables["params"],
                        quantizer_state=variables.get(QUANTIZER_STATE, state.quantizer_state))
  if getattr(state, "ema_params", None):  # a GAN state's parameter EMA starts from the fit
    state = state.replace(ema_params=variables["params"])
  return state


def _masked_code_counts(indices, mask, codebook_size: int):
  """Float32 counts [K] (or [levels, K] for indices [B, h, w, levels]) of valid examples."""
  weights = jnp.broadcast_to(mask.reshape(mask.shape + (1,) * (indices.ndim - 1)), indices.shape)
  if indices.ndim == 4:  # a trailing level or group axis: one count vector per level
    indices, weights = jnp.moveaxis(indices, -1, 0), jnp.moveaxis(weights, -1, 0)
    return jax.vmap(lambda i, w: _counts(i, w, codebook_size))(indices, weights)
  return _counts(indices, weights, codebook_size)


def _counts(indices, weights, codebook_size: int):
  valid = indices >= 0  # residual quantizer dropout marks dropped levels with -1
  return jnp.zeros(codebook_size, jnp.float32).at[jnp.where(valid, indices, 0).reshape(-1)].add(
      jnp.where(valid, weights, 0.0).reshape(-1))


def _path_hash(module: nn.Module) -> int:
  """A stable 31-bit number from the module's path, to give each codebook its own key."""
  path = "/".join(module.path)
  return sum(ord(c) * 31 ** i for i, c in enumerate(path)) % (2 ** 31 - 1)
