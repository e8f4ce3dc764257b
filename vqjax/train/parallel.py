"""The one place that maps the per-device steps of vqjax.train.steps over devices.

Tokenizer steps come from vqjax.train.steps (VQGAN: vqjax.train.gan_steps), prior steps
from vqjax.train.prior_steps (MaskGIT: vqjax.train.maskgit_steps), the prior's sampler
from vqjax.sampling.
Batches are laid out [devices, per-device batch, ...] (as vqjax.data yields them) and
mapped on AXIS_NAME. The state is not replicated by hand: it goes in with in_axes=None
and comes back with out_axes=None, one array per leaf held identically by every device,
and the train step donates it so its buffers are reused in place.
"""
from __future__ import annotations

import functools
import weakref
from typing import Callable, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from vqjax import sampling
from vqjax.train import state as train_state
from vqjax import guidance, maskgit
from vqjax.train import gan_state, gan_steps, maskgit_steps, prior_steps, steps

AXIS_NAME = "batch"


def init_state(model: nn.Module, optimizer: optax.GradientTransformation, *, seed: int,
               image_shape: tuple[int, int, int],
               devices: Sequence[jax.Device] | None = None) -> Callable:
  """() -> a fresh TrainState on the devices; jax.eval_shape of it is the abstract state."""
  init = _pmapped_init(model, optimizer, seed=seed, devices=devices)
  return lambda: init(jnp.zeros((_count(devices), 1, *image_shape), jnp.float32))


def _pmapped_init(model, optimizer, *, seed: int, devices) -> Callable:
  return jax.pmap(functools.partial(train_state.create_train_state, model, optimizer, seed=seed),
                  axis_name=AXIS_NAME, out_axes=None, devices=devices)


def _count(devices) -> int:
  return len(devices) if devices is not None else jax.local_device_count()


def _device_mesh(devices: Sequence[jax.Device] | None) -> jax.sharding.Mesh:
  return jax.sharding.Mesh(np.asarray(devices or jax.local_devices()), (AXIS_NAME,))


def replicated_sharding(devices: Sequence[jax.Device] | None = None) -> jax.sharding.Sharding:
  """How the state lives: whole on every device (what out_axes=None returns)."""
  return jax.sharding.NamedSharding(_device_mesh(devices), jax.sharding.PartitionSpec())


def split_sharding(devices: Sequence[jax.Device] | None = None) -> jax.sharding.Sharding:
  """How a batch lives: its leading axis [devices, ...] split over the devices."""
  return jax.sharding.NamedSharding(_device_mesh(devices),
                                    jax.sharding.PartitionSpec(AXIS_NAME))


def abstract_state(init: Callable, devices: Sequence[jax.Device] | None = None):
  """Shapes, dtypes and placement of what init_state's function returns; compiles nothing
  (the model's checks run on the shapes)."""
  sharding = replicated_sharding(devices)
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
                      jax.eval_shape(init))


def train_step(model: nn.Module, optimizer: optax.GradientTransformation, *,
               quantizer_loss_weights: Mapping[str, float] | None = None,
               devices: Sequence[jax.Device] | None = None) -> Callable:
  """(state, batch) -> (state, metrics), the state donated; metrics are global means."""
  step = functools.partial(steps.train_step, model=model, optimizer=optimizer,
                           axis_name=AXIS_NAME, quantizer_loss_weights=quantizer_loss_weights)
  return jax.pmap(step, axis_name=AXIS_NAME, in_axes=(None, 0), out_axes=(None, None),
                  donate_argnums=(0,), devices=devices)


def eval_step(model: nn.Module, *, value_range=(-1.0, 1.0), perceptual: nn.Module | None = None,
              perceptual_variables=None,
              devices: Sequence[jax.Device] | None = None) -> Callable:
  """(state, batch) -> (global sums, reconstructions [devices, per-device batch, ...]);
  the sums add 'lpips' given a perceptual module (LPIPS) and its variables."""
  step = functools.partial(steps.eval_step, model=model, value_range=tuple(value_range),
                           perceptual=perceptual, axis_name=AXIS_NAME)
  mapped = jax.pmap(step, axis_name=AXIS_NAME, in_axes=(None, 0, None), out_axes=(None, 0),
                    devices=devices)
  return _with_constant(mapped, perceptual_variables, devices)


def _with_constant(mapped: Callable, constant, devices) -> Callable:
  """(state, batch) -> mapped(state, batch, constant), the constant (e.g. LPIPS weights)
  placed on the devices once rather than sent with every call or compiled in; .mapped and
  .constant let a benchmark compile the same program ahead of time."""
  constant = jax.device_put(constant, replicated_sharding(devices))

  def call(state, batch):
    return mapped(state, batch, constant)

  call.mapped, call.constant = mapped, constant  # to compile ahead of time (benchmarks)
  return call


def kmeans_step(model: nn.Module, *, iterations: int = 10,
                devices: Sequence[jax.Device] | None = None) -> Callable:
  """(state, batch, key) -> state with its codebooks fit by k-means on the global batch."""
  step = functools.partial(steps.kmeans_step, model=model, iterations=iterations)
  return jax.pmap(step, axis_name=AXIS_NAME, in_axes=(None, 0, None), out_axes=None,
                  donate_argnums=(0,), devices=devices)


def init_gan_state(model: nn.Module, discriminator: nn.Module,
                   generator_optimizer: optax.GradientTransformation,
                   discriminator_optimizer: optax.GradientTransformation, *, seed: int,
                   image_shape: tuple[int, int, int], generator_ema: bool = False,
                   lecam: bool = False,
                   devices: Sequence[jax.Device] | None = None) -> Callable:
  """() -> a fresh GANTrainState on the devices; jax.eval_shape of it is the abstract state."""
  create = functools.partial(gan_state.create_gan_train_state, model, discriminator,
                             generator_optimizer, discriminator_optimizer, seed=seed,
                             generator_ema=generator_ema, lecam=lecam)
  init = jax.pmap(create, axis_name=AXIS_NAME, out_axes=None, devices=devices)
  return lambda: init(jnp.zeros((_count(devices), 1, *image_shape), jnp.float32))


def gan_train_step(model: nn.Module, discriminator: nn.Module, *,
                   generator_optimizer: optax.GradientTransformation,
                   discriminator_optimizer: optax.GradientTransformation,
                   settings: gan_steps.GANLossSettings, perceptual: nn.Module | None = None,
                   perceptual_variables=None,
                   quantizer_loss_weights: Mapping[str, float] | None = None,
                   devices: Sequence[jax.Device] | None = None) -> Callable:
  """(state, batch) -> (state, metrics) of a VQGAN, the state donated; global means.

  Two programs, each compiled on first use: before settings.discriminator_start and from
  it on (gan_steps.gan_train_step's static `adversarial`). The host chooses by the step
  number, read from the state once and then counted while each call is given the state
  the previous one returned (any other state is read again). .mapped (the adversarial
  program), .mapped_before_start and .constant let a benchmark compile ahead of time.
  """
  def mapped(adversarial: bool) -> Callable:
    step = functools.partial(
        gan_steps.gan_train_step, model=model, discriminator=discriminator,
        perceptual=perceptual, generator_optimizer=generator_optimizer,
        discriminator_optimizer=discriminator_optimizer, adversarial=adversarial,
        settings=settings, quantizer_loss_weights=quantizer_loss_weights,
        axis_name=AXIS_NAME)
    return jax.pmap(step, axis_name=AXIS_NAME, in_axes=(None, 0, None),
                    out_axes=(None, None), donate_argnums=(0,), devices=devices)

  programs = {False: mapped(False), True: mapped(True)}  # jax.pmap compiles lazily
  constant = jax.device_put(perceptual_variables, replicated_sharding(devices))
  steps_done = _HostStepCounter()

  def call(state, batch):
    step = steps_done.read(state)
    state, metrics = programs[gan_steps.is_adversarial(step, settings)](state, batch, constant)
    steps_done.returned(state, step + 1)
    return state, metrics

  call.mapped, call.mapped_before_start = programs[True], programs[False]
  call.constant = constant
  return call


class _HostStepCounter:
  """The step number of the state a train step was last given, without a device sync
  per step: int(state.step) once, then counted while the caller feeds back each state
  the step returned (a weak reference recognizes it)."""

  def __init__(self):
    self._state, self._step = lambda: None, None

  def read(self, state) -> int:
    if self._state() is state:
      return self._step
    return int(jax.device_get(state.step))

  def returned(self, state, step: int) -> None:
    self._state, self._step = weakref.ref(state), step


def init_prior_state(model: nn.Module, optimizer: optax.GradientTransformation, *, seed: int,
                     grid_shape: tuple[int, int], class_conditional: bool = False,
                     condition_shape: tuple[int, int] | None = None,
                     devices: Sequence[jax.Device] | None = None) -> Callable:
  """() -> a fresh prior TrainState on the devices, the model initialized on zero grids
  (and, with condition_shape, zero top grids: a VQ-VAE-2 bottom prior)."""
  init = _pmapped_init(model, optimizer, seed=seed, devices=devices)
  inputs = {}
  if class_conditional:
    inputs["labels"] = jnp.zeros((_count(devices), 1), jnp.int32)
  if condition_shape is not None:
    inputs["condition"] = jnp.zeros((_count(devices), 1, *condition_shape), jnp.int32)
  tokens = jnp.zeros((_count(devices), 1, *grid_shape), jnp.int32)
  return lambda: init(tokens, **inputs)


def prior_train_step(model: nn.Module, optimizer: optax.GradientTransformation, *,
                     label_smoothing: float = 0.0,
                     devices: Sequence[jax.Device] | None = None) -> Callable:
  """(state, batch) -> (state, metrics) of a prior, the state donated; global means. A
  MaskGIT prior trains on masked tokens (maskgit_steps.masked_train_step, with
  label_smoothing), a causal one on next tokens (prior_steps.prior_train_step)."""
  if maskgit.is_masked_prior(model):
    step = functools.partial(maskgit_steps.masked_train_step, model=model,
                             optimizer=optimizer, label_smoothing=label_smoothing,
                             axis_name=AXIS_NAME)
  elif label_smoothing:
    raise ValueError(f"label_smoothing is {label_smoothing} but the prior is causal, trained "
                     "on the exact next-token likelihood; set config.train.label_smoothing=0 "
                     "(it is an option of MaskGIT priors)")
  else:
    step = functools.partial(prior_steps.prior_train_step, model=model, optimizer=optimizer,
                             axis_name=AXIS_NAME)
  return jax.pmap(step, axis_name=AXIS_NAME, in_axes=(None, 0), out_axes=(None, None),
                  donate_argnums=(0,), devices=devices)


def prior_eval_step(model: nn.Module, *,
                    devices: Sequence[jax.Device] | None = None) -> Callable:
  """(state, batch) -> the global sums of prior_steps.prior_eval_step."""
  step = functools.partial(prior_steps.prior_eval_step, model=model, axis_name=AXIS_NAME)
  return jax.pmap(step, axis_name=AXIS_NAME, in_axes=(None, 0), out_axes=None,
                  devices=devices)


def masked_eval_step(model: nn.Module, *,
                     mask_ratios: Sequence[float] = maskgit_steps.EVAL_MASK_RATIOS,
                     devices: Sequence[jax.Device] | None = None) -> Callable:
  """(state, batch, rng) -> the global sums of maskgit_steps.masked_eval_step."""
  step = functools.partial(maskgit_steps.masked_eval_step, model=model,
                           mask_ratios=tuple(mask_ratios), axis_name=AXIS_NAME)
  return jax.pmap(step, axis_name=AXIS_NAME, in_axes=(None, 0, None), out_axes=None,
                  devices=devices)


def encode_step(model: nn.Module, *,
                devices: Sequence[jax.Device] | None = None) -> Callable:
  """(variables, images [devices, per-device batch, H, W, C]) -> the model's token grids
  (model.encode), laid out like the images."""
  return jax.pmap(lambda variables, images: model.apply(variables, images, method="encode"),
                  axis_name=AXIS_NAME, in_axes=(None, 0), devices=devices)


def prior_sample_step(prior: nn.Module, *, per_device_batch: int,
                      devices: Sequence[jax.Device] | None = None, **sampling_args) -> Callable:
  """(variables, rng, labels=None, condition=None) -> int32 grids
  [devices, per_device_batch, *prior.grid_shape], vqjax.sampling.sample_prior on every
  device, built once.

  variables are broadcast (in_axes=None); the one rng goes to every device, which folds in
  its axis_index, so devices draw different samples. labels [devices, per_device_batch]
  and the condition [devices, per_device_batch, ...] are split over devices.
  sampling_args: vqjax.sampling.sample_prior's (temperature, top_k, top_p, greedy,
  num_steps; guidance_scale, guidance_ramp; a MaskGIT prior's maskgit_steps,
  choice_temperature, mask_schedule). Labels must lie in [0, num_classes).
  """
  sampling.check_prior_sampling_args(prior, **sampling_args)
  sample = functools.partial(sampling.sample_prior, prior, batch_size=per_device_batch,
                             axis_name=AXIS_NAME, **sampling_args)
  # pmap needs one mapped argument even without labels, so the key goes in per device.
  mapped = jax.pmap(sample, axis_name=AXIS_NAME, in_axes=(None, 0, 0, 0), devices=devices)

  def sampler(variables, rng, labels=None, condition=None):
    guidance.check_labels(prior, labels)
    rngs = jnp.broadcast_to(rng, (_count(devices),) + rng.shape)
    return mapped(variables, rngs, labels, condition)

  return sampler


def inception_features_step(network: nn.Module, variables, *,
                            devices: Sequence[jax.Device] | None = None) -> Callable:
  """images [devices, per-device batch, H, W, 3] in [0, 255] -> the FID Inception network's
  outputs (vqjax.models.inception.InceptionV3: 'pool0', 'pool3', 'logits' with a
  classifier), laid out like the images; its variables are placed on the devices once."""
  mapped = jax.pmap(lambda constant, images: network.apply(constant, images),
                    axis_name=AXIS_NAME, in_axes=(None, 0), devices=devices)
  variables = jax.device_put(variables, replicated_sharding(devices))
  return lambda images: mapped(variables, images)
