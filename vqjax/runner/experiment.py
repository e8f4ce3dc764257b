"""An experiment from its config, checked before anything compiles, and its data.

`prepare(config)` reads dataset metadata (preparing the dataset first where
config.data.download is set), builds the model and optimizer, and traces the model's
initialization on shapes alone (jax.eval_shape), so every mistake in the config or the
data fails here with a ValueError that names the fix: unknown dataset or split, channels
that differ between data and model, image sizes the model cannot downsample, batch
sizes the devices cannot split, bad codebook size, beta or learning rate. A config with
the adversarial sections of vqjax.runner.gan_experiment (any tokenizer: a VQGAN, a
VQ-VAE) trains with a discriminator, LPIPS and the adaptive weight.
"""
from __future__ import annotations

from typing import Callable, Iterator, NamedTuple

import flax.linen as nn
import ml_collections

from vqjax import data, sampling
from vqjax.data import sources
from vqjax.train import optimizer as optimizer_lib, parallel
from vqjax.runner import build, gan_experiment, workdir
from vqjax.train.state import TrainState

class Experiment(NamedTuple):
  config: ml_collections.ConfigDict  # with config.data.data_dir made absolute
  info: data.DatasetInfo
  model: nn.Module
  optimizer: optimizer_lib.Optimizer
  init: Callable[[], TrainState]     # a fresh state on the local devices
  abstract_state: TrainState         # its shapes, dtypes and placement
  gan: gan_experiment.GANParts | None = None  # the adversarial parts, if the config has them


def prepare(config: ml_collections.ConfigDict, *,
            info: data.DatasetInfo | None = None) -> Experiment:
  """Checks config against the data and the devices and builds the experiment.

  info: the dataset's description where the caller has it (a prior over cached token
  grids), so that the dataset itself is not read.
  """
  config = resolve_paths(config)
  data_config = config.data
  check_train_config(config.train)
  check_data_config(data_config)
  if info is None:
    info = data.dataset_info(data_config.dataset, data_dir=data_config.data_dir,
                             download=data_config.download, image_size=data_config.image_size)
    for split in (data_config.train_split, data_config.eval_split):
      sources.open_source(data_config.dataset, split=split, data_dir=data_config.data_dir)
  channels = config.model.image_channels
  if channels != info.channels:
    raise ValueError(
        f"dataset {info.name!r} has {info.channels}-channel images but "
        f"config.model.image_channels is {channels}; set config.model.image_channels="
        f"{info.channels}")
  model = build.build_model(config.model, axis_name=parallel.AXIS_NAME)
  optimizer = build_optimizer(config)
  gan = None
  if gan_experiment.is_adversarial(config):
    gan = gan_experiment.prepare_gan(config)
    gan_experiment.check_images(gan, info.image_shape)
    init = gan_experiment.init_state(model, optimizer, gan, seed=config.seed,
                                     image_shape=info.image_shape)
  else:
    init = parallel.init_state(model, optimizer.transform, seed=config.seed,
                               image_shape=info.image_shape)
  abstract_state = parallel.abstract_state(init)  # the models' own checks run here
  return Experiment(config, info, model, optimizer, init, abstract_state, gan)


def check_train_config(train_config: ml_collections.ConfigDict) -> None:
  """Raises a ValueError naming the fix for bad step counts and intervals."""
  for name in ("num_steps", "log_every_steps", "checkpoint_every_steps"):
    value = train_config[name]
    if not isinstance(value, int) or value < 1:
      raise ValueError(f"config.train.{name} is {value!r}; it must be an int >= 1")
  if not isinstance(train_config.eval_every_steps, int) or train_config.eval_every_steps < 0:
    raise ValueError(f"config.train.eval_every_steps is {train_config.eval_every_steps!r}; it "
                     "must be an int >= 0 (0: evaluate only at the end)")
  for name in ("grid_examples", "kmeans_iterations", "num_samples"):  # where the task has it
    value = train_config.get(name, 1)
    if not isinstance(value, int) or value < 1:
      raise ValueError(f"config.train.{name} is {value!r}; it must be an int >= 1")
  keep = train_config.get("keep_checkpoints")
  if keep is not None and (not isinstance(keep, int) or keep < 1):
    raise ValueError(f"config.train.keep_checkpoints is {keep!r}; it must be an int >= 1, or "
                     "None to keep every checkpoint")
  if "temperature" in train_config:  # a prior's sampling settings
    try:
      sampling.check_sampling_args(temperature=train_config.temperature,
                                   top_k=train_config.get("top_k"),
                                   top_p=train_config.get("top_p"))
    except ValueError as error:
      raise ValueError(f"config.train.{error}") from None


def check_data_config(data_config: ml_collections.ConfigDict) -> None:
  """Raises a ValueError naming the field and the fix for bad batch sizes and counts."""
  for name in ("batch_size", "eval_batch_size"):
    try:
      data.batch_layout(data_config[name])
    except ValueError as error:
      raise ValueError(f"config.data.{name}: {error}") from None
  value = data_config.get("variance_examples", 1)
  if not isinstance(value, int) or value < 1:
    raise ValueError(f"config.data.variance_examples is {value!r}; it must be an int >= 1")


def build_optimizer(config: ml_collections.ConfigDict) -> optimizer_lib.Optimizer:
  """The optimizer of config.optimizer, its schedule over config.train.num_steps."""
  return optimizer_lib.optimizer_from_config(config.optimizer,
                                             total_steps=config.train.num_steps)


def resolve_paths(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A copy of config whose data_dir is absolute (relative paths are from the current
  directory), so that a saved config works from anywhere."""
  config = ml_collections.ConfigDict(config.to_dict())
  if config.data.data_dir is not None:
    config.data.data_dir = workdir.absolute_path(config.data.data_dir)
  return config


def train_batches(experiment: Experiment, *, start_step: int) -> Iterator[dict]:
  """Training batches from batch start_step on (the same batches on every restart)."""
  data_config = experiment.config.data
  return data.make_train_iterator(
      data_config.dataset, batch_size=data_config.batch_size, split=data_config.train_split,
      random_flip=data_config.random_flip, shuffle_buffer_size=data_config.shuffle_buffer_size,
      seed=experiment.config.seed, start_step=start_step, **_common(experiment))


def eval_batches(experiment: Experiment, *, split: str | None = None) -> Iterator[dict]:
  """One pass over split (default: the evaluation split), padded batches masked."""
  data_config = experiment.config.data
  return data.make_eval_iterator(data_config.dataset, batch_size=data_config.eval_batch_size,
                                 split=split or data_config.eval_split, **_common(experiment))


def data_variance(experiment: Experiment) -> float:
  """The pixel variance of the training split (its first variance_examples examples)."""
  data_config = experiment.config.data
  return data.data_variance(data_config.dataset, data_dir=data_config.data_dir,
                            split=data_config.train_split, image_size=data_config.image_size,
                            value_range=tuple(data_config.value_range),
                            max_examples=data_config.variance_examples)


def _common(experiment: Experiment) -> dict:
  data_config = experiment.config.data
  return dict(data_dir=data_config.data_dir, image_size=data_config.image_size,
              channels=experiment.config.model.image_channels,
              value_range=tuple(data_config.value_range))
