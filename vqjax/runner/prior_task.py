"""train_prior(config, workdir): an autoregressive prior over a tokenizer's token grids,
restartable at any point, with the tokenizer loop's machinery (vqjax.runner.loop).

    workdir/config.json          the config (experiments.sample reads it)
    workdir/checkpoints/<step>   prior train states, as the tokenizer loop keeps them
    workdir/tensorboard/         train and eval scalars, samples
    workdir/samples.png          token grids sampled from the prior, decoded by the tokenizer
                                 (not for a VQ-VAE-2 top prior: see below)
    workdir/metrics.json         test NLL: nll_nats_per_token, nll_nats_per_image,
                                 bits_per_dim (the grid's NLL in bits over the image's
                                 H * W * C, as the VQ-VAE paper reports) and bits_per_token;
                                 a MaskGIT prior's masked-token NLL and accuracy at fixed
                                 mask ratios instead (vqjax.runner.masked_nll)

The token grids are those of config.tokenizer_workdir's latest checkpoint
(vqjax.tokens; encoded and cached there when missing or stale). Restarts, SIGTERM and
non-finite losses behave as in vqjax.runner.loop.

Any tokenizer with one grid [h, w] per image (VQ-VAE, VQGAN, ...) is modeled as it is;
config.level stays None. A VQ-VAE-2 takes two priors, trained alike, config.level naming
the grid: 'top' models the top grids, 'bottom' the bottom grids conditioned on the top
grid of the same image (a transformer with condition_codebook_size, the top codebook's
size). Each reports the NLL of its own grid; the image's bits_per_dim is the sum of the
two. A bottom prior's samples are decoded over top grids sampled from the top prior in
config.top_prior_workdir, or over the evaluation split's top grids where that is unset; a
top prior writes no samples.png (vqjax.runner.prior_sampling says why). Residual and
grouped quantizers (a trailing level axis on the grid) are not supported.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import flax.linen as nn
import ml_collections
import numpy as np

from vqjax import maskgit, models, sampling, tokens
from vqjax.models import tokenizers
from vqjax.runner import (build, distributed, experiment, images, loop, masked_nll,
                          preemption, prior_sampling, token_cache, workdir as workdir_lib)
from vqjax.runner.task import Task
from vqjax.train import optimizer as optimizer_lib, parallel, prior_steps
from vqjax.train.state import TrainState

LEVELS = ("top", "bottom")


class PriorExperiment(NamedTuple):
  config: ml_collections.ConfigDict
  tokenizer: experiment.Experiment   # the tokenizer's experiment, and its state:
  tokenizer_state: TrainState        # decode_indices turns samples into images
  train_grids: tokens.TokenGrids     # 'tokens' (the modeled grid), a bottom prior's
  eval_grids: tokens.TokenGrids      # 'condition' (the top grid): the batches' keys
  model: nn.Module                   # the prior
  optimizer: optimizer_lib.Optimizer
  init: Callable[[], TrainState]
  abstract_state: TrainState

  @property
  def class_conditional(self) -> bool:
    return prior_steps.is_class_conditional(self.model)

  @property
  def level(self) -> str | None:
    """'top' or 'bottom' for a VQ-VAE-2's priors, None for a single-grid tokenizer's."""
    return self.config.get("level")

  @property
  def grid_shape(self) -> tuple[int, int]:
    return tuple(self.train_grids.grids["tokens"].shape[1:])

  @property
  def condition_shape(self) -> tuple[int, int] | None:
    """The top grid's shape for a bottom prior, else None."""
    condition = self.train_grids.grids.get("condition")
    return None if condition is None else tuple(condition.shape[1:])


def prepare_prior(config: ml_collections.ConfigDict) -> PriorExperiment:
  """Restores the tokenizer, loads (or encodes) its token grids, builds the prior."""
  config = ml_collections.ConfigDict(config.to_dict())
  if not config.tokenizer_workdir:
    raise ValueError("config.tokenizer_workdir is not set; pass the workdir of a trained "
                     "tokenizer: --config.tokenizer_workdir=DIR")
  config.tokenizer_workdir = workdir_lib.absolute_path(config.tokenizer_workdir)
  if config.get("top_prior_workdir"):
    config.top_prior_workdir = workdir_lib.absolute_path(config.top_prior_workdir)
  experiment.check_train_config(config.train)
  experiment.check_data_config(config.data)
  check_tokenizer_workdir(config.tokenizer_workdir)
  tokenizer, tokenizer_state, grids = token_cache.restore_with_grids(
      config.tokenizer_workdir, (config.data.train_split, config.data.eval_split))
  tokens_name, condition_name = _grid_names(config, tokenizer.model)
  train_grids, eval_grids = (
      tokens.select_grids(grids[split], tokens=tokens_name, condition=condition_name)
      for split in (config.data.train_split, config.data.eval_split))
  for name, grid in train_grids.grids.items():
    if grid.ndim != 3:
      raise ValueError(f"the tokenizer's {tokens_name if name == 'tokens' else name!r} grids "
                       f"have shape {grid.shape[1:]}, not [h, w]; train_prior takes "
                       "single-codebook quantizers (not residual or grouped)")
  num_classes = config.model.get("num_classes", 0) or 0
  if num_classes and train_grids.labels is None:
    raise ValueError(f"config.model.num_classes is {num_classes} but the dataset has no "
                     "labels; set config.model.num_classes=0")
  quantizers = tokenizers.quantizers_of(tokenizer.model)  # keyed '' or 'top/' and 'bottom/'
  codebook_size = tokenizers.codebook_size(
      quantizers["" if tokens_name == "tokens" else f"{tokens_name}/"])
  grid_shape = train_grids.grids["tokens"].shape[1:]
  condition = train_grids.grids.get("condition")
  model = build.build_prior(
      config.model, codebook_size=codebook_size, grid_shape=grid_shape,
      condition_codebook_size=tokenizers.codebook_size(quantizers["top/"]) if condition_name else 0)
  try:  # samples.png's settings, checked before any step rather than after the last
    sampling.check_prior_sampling_args(model, **prior_sampling.sampling_args_of(config.train))
  except ValueError as error:
    raise ValueError(f"config.train: {error}") from None
  optimizer = experiment.build_optimizer(config)
  init = parallel.init_prior_state(
      model, optimizer.transform, seed=config.seed, grid_shape=grid_shape,
      class_conditional=bool(num_classes),
      condition_shape=None if condition is None else condition.shape[1:])
  abstract_state = parallel.abstract_state(init)  # the prior's own checks run here
  return PriorExperiment(config, tokenizer, tokenizer_state, train_grids, eval_grids, model,
                         optimizer, init, abstract_state)


def _grid_names(config: ml_collections.ConfigDict, tokenizer) -> tuple[str, str | None]:
  """(the modeled grid's name, the condition's name or None) in the token-grid cache, from
  the tokenizer and config.level."""
  level = config.get("level")
  if isinstance(tokenizer, models.VQVAE2):
    if level not in LEVELS:
      raise ValueError(f"the tokenizer in {config.tokenizer_workdir} is a VQ-VAE-2, which "
                       f"needs two priors, but config.level is {level!r}; set "
                       "--config.level=top for the top prior and --config.level=bottom for "
                       "the bottom prior (conditioned on the top grid)")
    if config.get("top_prior_workdir") and level != "bottom":
      raise ValueError("config.top_prior_workdir is set but config.level is 'top'; only a "
                       "bottom prior samples over a top prior's grids, so unset it")
    return (level, "top") if level == "bottom" else (level, None)
  if level is not None:
    raise ValueError(f"config.level is {level!r} but the tokenizer in "
                     f"{config.tokenizer_workdir} is a {type(tokenizer).__name__} with one "
                     "grid per image; unset config.level (it names a VQ-VAE-2's grid)")
  if config.get("top_prior_workdir"):
    raise ValueError(f"config.top_prior_workdir is set but the tokenizer in "
                     f"{config.tokenizer_workdir} has one grid per image; unset it (it is "
                     "for a VQ-VAE-2 bottom prior)")
  return "tokens", None


def prior_task(run: PriorExperiment) -> Task:
  """The Task of a prepared prior experiment (prepare_prior(config))."""
  return Task(
      config=run.config, abstract_state=run.abstract_state, init_state=run.init,
      make_train_step=lambda: parallel.prior_train_step(
          run.model, run.optimizer.transform,
          label_smoothing=run.config.train.get("label_smoothing", None) or 0.0),
      train_batches=lambda start: tokens.make_token_iterator(
          run.train_grids, batch_size=run.config.data.batch_size, seed=run.config.seed,
          start_step=start),
      make_evaluators=lambda: [
          masked_nll.MaskedNLLEvaluator(run) if maskgit.is_masked_prior(run.model)
          else NLLEvaluator(run), SampleEvaluator(run)],
      learning_rate=run.optimizer.learning_rate)


def train_prior(config: ml_collections.ConfigDict, workdir: str) -> dict | None:
  """Trains (or resumes) the prior and evaluates it; returns the final metrics, None if
  preempted."""
  workdir_lib.check_training_workdir(workdir)
  distributed.maybe_initialize(**config.distributed.to_dict())
  with preemption.sigterm_handled():  # from the first line: start-up can be preempted too
    run = prepare_prior(config)
    if run.config.get("top_prior_workdir"):
      check_top_prior_workdir(run, run.config.top_prior_workdir)
    return loop.train_and_evaluate(prior_task(run), workdir)


def restore_prior_workdir(workdir: str) -> tuple[PriorExperiment, TrainState]:
  """The prior experiment saved in a train_prior workdir and its latest checkpoint."""
  workdir = workdir_lib.absolute_path(workdir)
  config = workdir_lib.load_config(workdir)
  check_prior_config(workdir, config)
  distributed.maybe_initialize(**config.distributed.to_dict())
  run = prepare_prior(config)
  return run, workdir_lib.restore_latest(workdir, config, run.abstract_state)


def check_prior_config(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Raises a ValueError naming the fix unless config (workdir's) is a prior's."""
  if not config.get("tokenizer_workdir"):
    raise ValueError(f"{workdir} holds a tokenizer's run (experiments.train), not a prior's; "
                     "pass the --workdir of experiments.train_prior (experiments.evaluate "
                     "evaluates a tokenizer)")


def check_sample_request(workdir: str, *, num_samples: int, label: int | None = None,
                         **sampling_args) -> ml_collections.ConfigDict:
  """The config of the prior in workdir, once what experiments.sample was asked is known
  to be possible: a ValueError naming the fix for a count under 1, a workdir that is not
  a prior's (or a VQ-VAE-2 top prior's, which samples only through its bottom prior), bad
  sampling arguments or a label the prior was not trained on. Reads only config.json."""
  check_num_samples(num_samples)
  workdir = workdir_lib.absolute_path(workdir)
  config = workdir_lib.load_config(workdir)
  check_prior_config(workdir, config)
  prior = build.build_prior(config.model, codebook_size=1, grid_shape=(1, 1),
                            condition_codebook_size=int(config.get("level") == "bottom"))
  sampling.check_prior_sampling_args(prior, **sampling_args)
  if config.get("level") == "top":
    raise ValueError(prior_sampling.TOP_PRIOR_ERROR)
  num_classes = config.model.get("num_classes", 0) or 0
  if label is not None and num_classes and not 0 <= label < num_classes:
    raise ValueError(f"label {label} is not one of the {num_classes} classes the prior in "
                     f"{workdir} was trained on; pass a label from 0 to {num_classes - 1}")
  if label is not None and not num_classes and config.get("level") is None:
    raise ValueError(f"a label was given but the prior in {workdir} is unconditional "
                     "(config.model.num_classes=0); drop --label")
  return config


def check_num_samples(num_samples: int) -> None:
  if not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
    raise ValueError(f"num_samples is {num_samples!r}; sample at least one image "
                     "(e.g. --num_samples=32)")


def check_tokenizer_workdir(tokenizer_workdir: str) -> None:
  """Raises a ValueError naming the fix unless tokenizer_workdir holds a tokenizer's run."""
  if workdir_lib.load_config(tokenizer_workdir).get("tokenizer_workdir"):
    raise ValueError(f"config.tokenizer_workdir={tokenizer_workdir} holds a prior's run, not "
                     "a tokenizer's; pass the --workdir of experiments.train")


def check_top_prior_workdir(run: PriorExperiment, top_prior_workdir: str) -> None:
  """Raises a ValueError naming the fix unless run is a bottom prior and top_prior_workdir
  holds a top prior over the same tokenizer (read from its config.json; compiles nothing)."""
  if run.level != "bottom":
    raise ValueError(f"a top prior workdir was given but this prior has config.level="
                     f"{run.level!r}; only a VQ-VAE-2 bottom prior samples over a top prior")
  top_config = workdir_lib.load_config(workdir_lib.absolute_path(top_prior_workdir))
  if top_config.get("level") != "top":
    raise ValueError(f"{top_prior_workdir} holds a prior with config.level="
                     f"{top_config.get('level')!r}, not 'top'; pass the workdir of a prior "
                     "trained with --config.level=top")
  if workdir_lib.absolute_path(top_config.tokenizer_workdir) != run.config.tokenizer_workdir:
    raise ValueError(f"the top prior in {top_prior_workdir} models the grids of "
                     f"{top_config.tokenizer_workdir}, this bottom prior those of "
                     f"{run.config.tokenizer_workdir}; pass a top prior over the same "
                     "tokenizer")


def restore_top_prior(run: PriorExperiment, top_prior_workdir: str | None = None
                      ) -> tuple[PriorExperiment, TrainState] | None:
  """The top prior (experiment, latest state) a bottom prior samples over: the one in
  top_prior_workdir (default config.top_prior_workdir); None where neither is set."""
  top_prior_workdir = top_prior_workdir or run.config.get("top_prior_workdir")
  if not top_prior_workdir:
    return None
  check_top_prior_workdir(run, top_prior_workdir)
  top_run, top_state = restore_prior_workdir(top_prior_workdir)
  prior_sampling.check_top_prior(run, top_run)
  return top_run, top_state


def sample_images(run: PriorExperiment, state: TrainState, rng, *, num_samples: int,
                  labels=None, top_prior: tuple[PriorExperiment, TrainState] | None = None,
                  **sampling_args) -> np.ndarray:
  """Float32 images [num_samples, H, W, C]: grids sampled from the prior, decoded by the
  tokenizer (vqjax.runner.prior_sampling.sample_and_decode; a top prior has none).

  labels: int32 [num_samples] for a class-conditional prior (default: the classes in
  turn). A bottom prior samples over top grids from top_prior (default: the one in
  config.top_prior_workdir, restored), or without one over the evaluation split's.
  sampling_args: temperature, top_k, top_p, greedy.
  """
  check_num_samples(num_samples)
  if top_prior is None and run.level == "bottom":
    top_prior = restore_top_prior(run)
  return prior_sampling.sample_and_decode(run, state, rng, num_samples=num_samples,
                                          labels=labels, top_prior=top_prior, **sampling_args)


class NLLEvaluator:
  """Test NLL over the evaluation grids, compiled once: nll_nats_per_token,
  nll_nats_per_image, bits_per_token, bits_per_dim (the grid's NLL in bits over the
  image's H * W * C) and num_examples."""

  def __init__(self, run: PriorExperiment):
    self._run = run
    self._eval_fn = parallel.prior_eval_step(run.model)

  def run(self, state: TrainState):
    sums = None
    for batch in tokens.make_token_iterator(
        self._run.eval_grids, batch_size=self._run.config.data.eval_batch_size, train=False):
      batch_sums = jax.device_get(self._eval_fn(state, batch))
      sums = batch_sums if sums is None else jax.tree.map(np.add, sums, batch_sums)
    count, nll = float(sums["count"]), float(sums["nll"])
    dims = math.prod(self._run.tokenizer.info.image_shape)
    yield "nll_nats_per_token", nll / float(sums["tokens"])
    yield "nll_nats_per_image", nll / count
    yield "bits_per_token", nll / float(sums["tokens"]) / math.log(2.0)
    yield "bits_per_dim", nll / count / math.log(2.0) / dims
    yield "num_examples", count


class SampleEvaluator:
  """'samples': config.train.num_samples grids sampled from the prior and decoded by the
  tokenizer (nothing for a VQ-VAE-2 top prior: vqjax.runner.prior_sampling says why)."""

  def __init__(self, run: PriorExperiment):
    self._run = run
    self._sampling_args = prior_sampling.sampling_args_of(run.config.train)
    self._top_prior = None  # restored at the first report

  def run(self, state: TrainState):
    run = self._run
    if run.level == "top":
      return
    if self._top_prior is None:
      self._top_prior = restore_top_prior(run)
    rng = jax.random.fold_in(jax.random.PRNGKey(run.config.seed), int(state.step))
    samples = sample_images(run, state, rng, num_samples=run.config.train.num_samples,
                            top_prior=self._top_prior, **self._sampling_args)
    yield "samples", images.image_grid(samples, columns=sample_columns(run),
                                       value_range=run.tokenizer.config.data.value_range)


def sample_columns(run: PriorExperiment) -> int:
  """Columns of a sample grid: one class per column for a class-conditional prior (whose
  default labels are the classes in turn), else 8."""
  num_classes = run.config.model.get("num_classes", 0) or 0
  return num_classes if run.class_conditional and num_classes <= 16 else 8
