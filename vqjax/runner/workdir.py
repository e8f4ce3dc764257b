"""A run's workdir: its config.json and its checkpoints, and nothing about the model.

    workdir/config.json         the config the run was started with
    workdir/checkpoints/<step>  the run's states (vqjax.train.checkpoints)
"""
from __future__ import annotations

import json
import os
from typing import Any

from absl import logging
from etils import epath
import ml_collections

from vqjax.train.checkpoints import Checkpoints

CONFIG_FILE = "config.json"


def absolute_path(path: str) -> str:
  """path made absolute from the current directory; a URL such as gs://bucket/dir (which
  a pod's processes share) as it is."""
  return path if "://" in path else os.path.abspath(os.path.expanduser(path))


def save_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Writes config to workdir/config.json; a different config there (a resume that
  vqjax.runner.config_drift allowed) is kept as config.<n>.json first."""
  path = epath.Path(workdir) / CONFIG_FILE
  text = config.to_json(indent=2, sort_keys=True)
  if path.exists():
    old = path.read_text()
    if json.loads(old) == json.loads(text):
      return
    n = 1
    while (epath.Path(workdir) / f"config.{n}.json").exists():
      n += 1
    (epath.Path(workdir) / f"config.{n}.json").write_text(old)
    logging.warning("%s was replaced by the new config; the old one is config.%d.json", path, n)
  path.write_text(text)


def saved_config(workdir: str) -> ml_collections.ConfigDict | None:
  """The config.json of workdir, None where there is none."""
  path = epath.Path(workdir) / CONFIG_FILE
  return ml_collections.ConfigDict(json.loads(path.read_text())) if path.exists() else None


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """The config that a training run saved in workdir."""
  path = epath.Path(workdir) / CONFIG_FILE
  if not path.exists():
    raise ValueError(f"{path} does not exist; pass the --workdir that experiments.train "
                     "(or experiments.train_prior) wrote: it saves its config there")
  return ml_collections.ConfigDict(json.loads(path.read_text()))


def checkpoints_of(workdir: str, config: ml_collections.ConfigDict) -> Checkpoints:
  """The checkpoints in workdir/checkpoints, with the config's interval and retention."""
  return Checkpoints(os.path.join(workdir, "checkpoints"),
                     save_every_steps=config.train.checkpoint_every_steps,
                     max_to_keep=config.train.keep_checkpoints)


def latest_checkpoint_step(workdir: str) -> int | None:
  """The step of the latest checkpoint in a training workdir (None: none)."""
  workdir = absolute_path(workdir)
  checkpoints = checkpoints_of(workdir, load_config(workdir))
  try:
    return checkpoints.latest_step()
  finally:
    checkpoints.close()


def restore_latest(workdir: str, config: ml_collections.ConfigDict, abstract_state: Any):
  """The latest readable state in workdir; a ValueError naming the fix when there is none."""
  checkpoints = checkpoints_of(workdir, config)
  try:
    state = checkpoints.restore_latest(abstract_state)
  finally:
    checkpoints.close()
  if state is None:
    raise ValueError(f"{checkpoints.directory} holds no checkpoint; train first with "
                     f"python -m experiments.train (a prior: experiments.train_prior) "
                     f"--workdir={workdir}")
  return state
