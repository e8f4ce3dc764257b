"""A trained tokenizer's token grids, cached in its workdir for the priors.

    <tokenizer workdir>/token_grids/<split>.npz   (vqjax.tokens' cache files)

`restore_with_grids(tokenizer_workdir, splits)` restores the tokenizer once and returns
it with the grids of every split: read from the cache where that was made by the latest
checkpoint, encoded (and cached) anew where it is missing, stale or damaged, each time
saying why. When every split's cache is fresh the image dataset is not read at all: the
cache records the images' shape, which is all the tokenizer's state needs.
"""
from __future__ import annotations

import functools
import os
from typing import NamedTuple, Sequence

from absl import logging

from vqjax import data, models, tokens
from vqjax.runner import experiment, workdir as workdir_lib
from vqjax.train import parallel
from vqjax.train.state import TrainState

CACHE_DIR = "token_grids"


class TokenizerWithGrids(NamedTuple):
  run: experiment.Experiment   # the tokenizer's experiment: its model decodes samples
  state: TrainState            # its latest checkpoint
  grids: dict[str, tokens.TokenGrids]  # by split


def cache_path(tokenizer_workdir: str, split: str) -> str:
  return os.path.join(workdir_lib.absolute_path(tokenizer_workdir), CACHE_DIR,
                      tokens.cache_file_name(split))


def grid_names(model) -> tuple[str, ...]:
  """The names of a tokenizer's grids in the cache."""
  return ("top", "bottom") if isinstance(model, models.VQVAE2) else ("tokens",)


def restore_with_grids(tokenizer_workdir: str, splits: Sequence[str]) -> TokenizerWithGrids:
  """The tokenizer of a training workdir, restored once, and its grids of splits."""
  tokenizer_workdir = workdir_lib.absolute_path(tokenizer_workdir)
  config = workdir_lib.load_config(tokenizer_workdir)
  latest = workdir_lib.latest_checkpoint_step(tokenizer_workdir)
  fresh, stale = {}, []
  for split in dict.fromkeys(splits):
    cached = tokens.read_token_grids(cache_path(tokenizer_workdir, split))
    reason = _stale_reason(cached, split, latest)
    if reason is None:
      fresh[split] = cached
    else:
      stale.append(split)
      logging.info("encoding the %r token grids of %s: %s", split, tokenizer_workdir, reason)
  info = None
  if not stale:  # the dataset's description from the cache: no image is read
    image_shape = next(iter(fresh.values())).image_shape
    info = data.DatasetInfo(name=config.data.dataset, image_shape=image_shape,
                            channels=image_shape[-1], num_classes=None, num_examples={})
  run = experiment.prepare(config, info=info)
  state = workdir_lib.restore_latest(tokenizer_workdir, config, run.abstract_state)
  if stale:
    encode = functools.partial(parallel.encode_step(run.model), state.variables)
    for split in stale:
      grids = tokens.encode_grids(encode, experiment.eval_batches(run, split=split),
                                  names=grid_names(run.model),
                                  checkpoint_step=int(state.step), split=split)
      tokens.save_token_grids(cache_path(tokenizer_workdir, split), grids)
      fresh[split] = grids
  return TokenizerWithGrids(run, state, fresh)


def _stale_reason(cached: tokens.TokenGrids | None, split: str, latest: int | None):
  """Why a cache cannot be used as it is; None when it can."""
  if cached is None:
    return "no readable cache"
  if cached.split != split:
    return f"the cache holds split {cached.split!r}"
  if cached.checkpoint_step != latest:
    return (f"the cache was encoded by the checkpoint at step {cached.checkpoint_step}, the "
            f"latest is step {latest}")
  if cached.image_shape is None:
    return "the cache does not record the image shape (an older vqjax wrote it)"
  return None
