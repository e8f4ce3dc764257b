"""The per-device adversarial step of any tokenizer (VQGAN, VQ-VAE): generator and
discriminator updated together.

    gan_train_step(state, batch, perceptual_variables) -> (state, metrics)

Generator loss = pixel loss (L1 or L2) + perceptual_weight * LPIPS + quantizer loss
               + gan_weight * generator GAN loss,
gan_weight = discriminator_weight * lambda, lambda = ||d rec / d W|| / (||d gan / d W|| + 1e-4)
clipped to [0, max_adaptive_weight], with W the decoder's last layer (model.output_layer_path)
and rec the pixel + perceptual loss (taming-transformers' adaptive weight). The
discriminator sees the step's reconstructions (held fixed) and the real images.

Before discriminator_start both the GAN term and the discriminator's update are off. The
switch is the static argument `adversarial`, chosen on the host from the step number
(vqjax.train.parallel.gan_train_step), so the two kinds of step compile as two programs:
convolutions inside lax.cond run many times slower on XLA:CPU (the PatchGAN's forward and
backward: 0.24 s as plain jit, 3.46 s inside a cond). The step is written for one device
and a pod alike:
gradients, metrics and lambda's gradient norms are averaged over axis_name, and a
discriminator with batch norm synchronizes its statistics over the same axis.

How lambda is computed without extra passes through the generator: the generator runs up
to the features before its last layer under jax.vjp; the losses are differentiated with
respect to (last layer, features), which only runs the last layer, LPIPS and the
discriminator backwards; the GAN term's cotangents are scaled by gan_weight and added to
the reconstruction's; one pullback through the generator then gives its gradients. LPIPS
reads the real images' VGG features computed once, outside the gradient.
"""
from __future__ import annotations

from typing import Mapping, NamedTuple

from flax import traverse_util
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from vqjax import collectives
from vqjax import losses
from vqjax.nn.quantizer_layers import RNG as QUANTIZER_RNG
from vqjax.train.gan_state import GANTrainState
from vqjax.train.state import QUANTIZER_STATE, step_key
from vqjax.train.steps import quantizer_loss



class GANLossSettings(NamedTuple):
  """The VQGAN loss; defaults follow taming-transformers' VQLPIPSWithDiscriminator."""
  reconstruction_loss: str = "l1"      # 'l1' or 'l2' per pixel
  perceptual_weight: float = 1.0       # LPIPS; 0 turns it off
  gan_loss: str = "hinge"              # or 'non_saturating'
  discriminator_weight: float = 0.8    # times the adaptive weight
  discriminator_start: int = 0         # steps before the GAN terms switch on
  adaptive_weight: bool = True         # False: gan_weight = discriminator_weight
  max_adaptive_weight: float = 1e4
  lecam_weight: float = 0.0            # LeCam regularization of the discriminator
  lecam_decay: float = 0.99
  r1_gamma: float = 0.0                # R1 penalty gamma / 2 * ||grad D(x)||^2
  generator_ema_decay: float = 0.0     # > 0: keep an EMA of the generator's parameters


def check_settings(settings: GANLossSettings, *, discriminator: nn.Module | None = None) -> None:
  """Raises a ValueError naming the fix for inconsistent loss settings."""
  losses.check_reconstruction_loss(settings.reconstruction_loss)
  losses.check_gan_loss(settings.gan_loss)
  for name in ("perceptual_weight", "discriminator_weight", "lecam_weight", "r1_gamma",
               "max_adaptive_weight"):
    if getattr(settings, name) < 0:
      raise ValueError(f"{name} is {getattr(settings, name)}; it must be >= 0")
  if settings.discriminator_start < 0:
    raise ValueError(f"discriminator_start is {settings.discriminator_start}; it must be "
                     ">= 0 (0: adversarial from the first step)")
  for name in ("lecam_decay", "generator_ema_decay"):
    if not 0.0 <= getattr(settings, name) < 1.0:
      raise ValueError(f"{name} is {getattr(settings, name)}; it must be in [0, 1)")
  if settings.r1_gamma and getattr(discriminator, "norm", None) == "batch":
    raise ValueError("the R1 penalty needs per-image input gradients, which batch norm "
                     "mixes; set the discriminator's norm to 'group' or 'none', or r1_gamma=0")


def split_output_layer(params: dict, path: tuple[str, ...]) -> tuple[dict, dict]:
  """(every parameter but the last layer's, the last layer's) of params; path: where the
  last layer is (the model's output_layer_path)."""
  flat = traverse_util.flatten_dict(params)
  inside = lambda key: key[:len(path)] == tuple(path)
  body = {key: value for key, value in flat.items() if not inside(key)}
  output = {key[len(path):]: value for key, value in flat.items() if inside(key)}
  if not output:
    raise ValueError(f"the model has no parameters at {'/'.join(path)}, its output_layer_path")
  return traverse_util.unflatten_dict(body), traverse_util.unflatten_dict(output)


def join_output_layer(body: dict, output: dict, path: tuple[str, ...]) -> dict:
  """The inverse of split_output_layer."""
  flat = traverse_util.flatten_dict(body)
  flat.update({tuple(path) + key: value
               for key, value in traverse_util.flatten_dict(output).items()})
  return traverse_util.unflatten_dict(flat)


def _nest(output: dict, path: tuple[str, ...]) -> dict:
  return join_output_layer({}, output, path)


def discriminate(discriminator: nn.Module, params, disc_state, images, *, train: bool):
  """(float32 logits, updated disc_state); with batch norm in train mode the statistics
  are those of `images` (synchronized over the discriminator's axis_name)."""
  variables = {"params": params, **disc_state}
  if train and disc_state:
    logits, updated = discriminator.apply(variables, images, train=True,
                                          mutable=list(disc_state))
    return logits.astype(jnp.float32), {**disc_state, **updated}
  return discriminator.apply(variables, images, train=train).astype(jnp.float32), disc_state


def is_adversarial(step: int, settings: GANLossSettings) -> bool:
  """Whether the update from `step` (the updates done so far) has the GAN terms on."""
  return step >= settings.discriminator_start


def gan_train_step(state: GANTrainState, batch, perceptual_variables=None, *, model: nn.Module,
                   discriminator: nn.Module, perceptual: nn.Module | None,
                   generator_optimizer: optax.GradientTransformation,
                   discriminator_optimizer: optax.GradientTransformation,
                   adversarial: bool,
                   settings: GANLossSettings = GANLossSettings(),
                   quantizer_loss_weights: Mapping[str, float] | None = None,
                   axis_name: str | None = "batch"):
  """One generator and one discriminator update on this device's share of the batch.

  model: a tokenizer with decoder_features / to_image and output_layer_path (VQGAN,
  VQVAE); perceptual: an LPIPS module applied with perceptual_variables (unused when
  settings.perceptual_weight is 0). adversarial (static): the GAN terms and the
  discriminator's update on; pass is_adversarial(step, settings). Off, the metrics keep
  their keys, the GAN ones 0, and the discriminator's state is returned unchanged.
  Returns (state, metrics), metrics as means over the global batch.
  """
  images = batch["image"]
  key = step_key(state)
  quantizer_key, dropout_key = jax.random.split(key)
  path = tuple(model.output_layer_path)
  body_params, output_params = split_output_layer(state.params, path)

  def body(body_params):
    features, updated = model.apply(
        {"params": join_output_layer(body_params, output_params, path),
         **state.quantizer_state_collection},
        images, train=True, method="decoder_features", mutable=[QUANTIZER_STATE],
        rngs={QUANTIZER_RNG: quantizer_key, "dropout": dropout_key})
    vq_loss = quantizer_loss(features, quantizer_loss_weights)
    return (features.features, vq_loss), (features, updated)

  (decoder_features, vq_loss), body_pullback, (features, updated) = jax.vjp(
      body, body_params, has_aux=True)

  def to_image(output_params, decoder_features):
    return model.apply({"params": _nest(output_params, path)}, decoder_features,
                       method="to_image")

  real_features = None
  if settings.perceptual_weight:  # the real images' half of LPIPS: no gradient needed
    real_features = perceptual.apply(perceptual_variables, images, method="target_features")

  def rec_loss_fn(output_params, decoder_features):
    reconstruction = to_image(output_params, decoder_features)
    pixel = losses.reconstruction_loss(reconstruction, images, settings.reconstruction_loss)
    perceptual_loss = jnp.zeros((), jnp.float32)
    if settings.perceptual_weight:
      perceptual_loss = jnp.mean(perceptual.apply(
          perceptual_variables, reconstruction, real_features, method="distance_to_features"))
    return pixel + settings.perceptual_weight * perceptual_loss, (
        reconstruction, pixel, perceptual_loss)

  def gan_loss_fn(output_params, decoder_features):
    reconstruction = to_image(output_params, decoder_features)
    fake_logits, _ = discriminate(discriminator, state.disc_params, state.disc_state,
                                  reconstruction, train=True)
    return losses.generator_loss(fake_logits, settings.gan_loss)

  (rec_loss, (reconstruction, pixel, perceptual_loss)), (output_grads, feature_grads) = (
      jax.value_and_grad(rec_loss_fn, argnums=(0, 1), has_aux=True)(
          output_params, decoder_features))

  zero = jnp.zeros((), jnp.float32)
  gan_loss, adaptive, gan_weight = zero, zero, zero
  if adversarial:
    gan_loss, gan_grads = jax.value_and_grad(gan_loss_fn, argnums=(0, 1))(
        output_params, decoder_features)
    last_rec, last_gan = output_grads["kernel"], gan_grads[0]["kernel"]
    # Lambda from the global gradients, the same on every device.
    last_rec, last_gan = collectives.pmean((last_rec, last_gan), axis_name)
    adaptive = (losses.adaptive_weight(last_rec, last_gan,
                                       max_weight=settings.max_adaptive_weight)
                if settings.adaptive_weight else jnp.ones((), jnp.float32))
    gan_weight = settings.discriminator_weight * adaptive
    output_grads, feature_grads = jax.tree.map(
        lambda r, g: r + (gan_weight * g.astype(jnp.float32)).astype(r.dtype),
        (output_grads, feature_grads), gan_grads)
  (body_grads,) = body_pullback((feature_grads, jnp.ones((), jnp.float32)))
  grads = join_output_layer(body_grads, output_grads, path)
  grads = collectives.pmean(grads, axis_name)
  updates, opt_state = generator_optimizer.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  ema_params = state.ema_params
  if ema_params:
    decay = settings.generator_ema_decay
    ema_params = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema_params, params)

  update = _discriminator_update if adversarial else _no_discriminator_update
  disc_update = update(state, images, jax.lax.stop_gradient(reconstruction),
                       discriminator=discriminator, optimizer=discriminator_optimizer,
                       settings=settings, axis_name=axis_name)
  state = state.replace(
      step=state.step + 1, params=params, opt_state=opt_state, ema_params=ema_params,
      quantizer_state=updated.get(QUANTIZER_STATE, state.quantizer_state),
      disc_params=disc_update["params"], disc_opt_state=disc_update["opt_state"],
      disc_state=disc_update["state"], lecam_ema=disc_update["lecam_ema"])
  metrics = {
      "loss": rec_loss + vq_loss + gan_weight * gan_loss, "reconstruction_loss": pixel,
      "perceptual_loss": perceptual_loss, "quantizer_loss": vq_loss,
      "generator_gan_loss": gan_loss, "adaptive_weight": adaptive, "gan_weight": gan_weight,
      **features.quantizer_losses,
      **{name: value.astype(jnp.float32) for name, value in features.metrics.items()},
      **disc_update["metrics"]}
  metrics = collectives.pmean(metrics, axis_name)
  metrics["grad_norm"] = losses.global_norm(grads)
  return state, metrics


def _discriminator_update(state: GANTrainState, images, reconstruction, *, discriminator,
                          optimizer, settings: GANLossSettings, axis_name):
  """The discriminator's new params, optimizer state, collections, LeCam EMAs and
  metrics."""
  lecam_ema = losses.LeCamEMA(**state.lecam_ema) if state.lecam_ema else None

  def loss_fn(params):
    real_logits, disc_state = discriminate(discriminator, params, state.disc_state, images,
                                           train=True)
    fake_logits, disc_state = discriminate(discriminator, params, disc_state, reconstruction,
                                           train=True)
    loss = losses.discriminator_loss(real_logits, fake_logits, settings.gan_loss)
    terms = {"discriminator_gan_loss": loss}
    if lecam_ema is not None and settings.lecam_weight:
      terms["lecam_loss"] = losses.lecam_regularization(real_logits, fake_logits, lecam_ema)
      loss += settings.lecam_weight * terms["lecam_loss"]
    if settings.r1_gamma:
      terms["r1_penalty"] = losses.r1_penalty(
          lambda x: discriminate(discriminator, params, state.disc_state, x, train=True)[0],
          images)
      loss += 0.5 * settings.r1_gamma * terms["r1_penalty"]
    return loss, (disc_state, real_logits, fake_logits, terms)

  (loss, (disc_state, real_logits, fake_logits, terms)), grads = jax.value_and_grad(
      loss_fn, has_aux=True)(state.disc_params)
  grads = collectives.pmean(grads, axis_name)
  updates, opt_state = optimizer.update(grads, state.disc_opt_state, state.disc_params)
  new_lecam = state.lecam_ema
  if lecam_ema is not None:
    new_lecam = losses.update_lecam_ema(lecam_ema, real_logits, fake_logits,
                                        decay=settings.lecam_decay,
                                        axis_name=axis_name)._asdict()
  metrics = {"discriminator_loss": loss, "logits_real": jnp.mean(real_logits),
             "logits_fake": jnp.mean(fake_logits), **terms,
             "discriminator_grad_norm": losses.global_norm(grads)}
  return {"params": optax.apply_updates(state.disc_params, updates), "opt_state": opt_state,
          "state": disc_state, "lecam_ema": new_lecam, "metrics": metrics}


def _no_discriminator_update(state: GANTrainState, images, reconstruction, *, discriminator,
                             optimizer, settings: GANLossSettings, axis_name):
  """Before discriminator_start: the discriminator's state unchanged, its metrics 0."""
  del images, reconstruction, discriminator, optimizer, axis_name
  names = ["discriminator_loss", "logits_real", "logits_fake", "discriminator_gan_loss",
           "discriminator_grad_norm"]
  names += ["lecam_loss"] * bool(state.lecam_ema and settings.lecam_weight)
  names += ["r1_penalty"] * bool(settings.r1_gamma)
  return {"params": state.disc_params, "opt_state": state.disc_opt_state,
          "state": state.disc_state, "lecam_ema": state.lecam_ema,
          "metrics": {name: jnp.zeros((), jnp.float32) for name in names}}
