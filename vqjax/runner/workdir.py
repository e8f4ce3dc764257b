"""A run's workdir: its config.json and its checkpoints, and nothing about the model.

    workdir/config.json         the config the run was started with
    workdir/checkpoints/<step>  the run's states (vqjax.train.checkpoints)
    workdir/evaluations/step_<N>[-<n>]/   each experiments.evaluate of step N, never over
                                          an earlier one
    workdir/samples_<UTC time>[-<n>].png  each experiments.sample, never over another

Reading commands (evaluate, sample, a prior restoring its tokenizer) open the checkpoints
read-only: a damaged step is skipped with a warning, never moved (restore_latest); only
training changes a workdir's checkpoints.
"""
from __future__ import annotations

import datetime
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


_TRAINED_BY = ("pass the --workdir that experiments.train (or experiments.train_prior) "
               "wrote: it saves its config there")


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """The config that a training run saved in workdir; a ValueError naming the fix where
  workdir is missing, a file, or holds no readable config.json."""
  if not workdir:
    raise ValueError(f"no workdir was given (--workdir is empty); {_TRAINED_BY}")
  directory = epath.Path(workdir)
  if not directory.exists():
    raise ValueError(f"workdir {workdir} does not exist; {_TRAINED_BY}")
  if not directory.is_dir():
    raise ValueError(f"workdir {workdir} is a file, not a directory; {_TRAINED_BY}")
  path = directory / CONFIG_FILE
  if not path.exists():
    raise ValueError(f"{path} does not exist; {_TRAINED_BY}")
  try:
    return ml_collections.ConfigDict(json.loads(path.read_text()))
  except ValueError as error:
    raise ValueError(f"{path} is not a readable config ({error}); it was damaged: restore it "
                     f"from a copy, or {_TRAINED_BY}") from None


def check_training_workdir(workdir: str) -> None:
  """Raises a ValueError naming the fix where a training run cannot use workdir."""
  if not workdir:
    raise ValueError("no workdir was given (--workdir is empty); pass the directory for the "
                     "run's checkpoints, logs and results, e.g. --workdir=workdir/digits")
  if epath.Path(workdir).exists() and not epath.Path(workdir).is_dir():
    raise ValueError(f"--workdir={workdir} is a file, not a directory; pass a directory (it "
                     "is created if missing)")


def checkpoints_of(workdir: str, config: ml_collections.ConfigDict, *,
                   read_only: bool = False) -> Checkpoints:
  """The checkpoints in workdir/checkpoints, with the config's interval and retention."""
  return Checkpoints(os.path.join(workdir, "checkpoints"),
                     save_every_steps=config.train.checkpoint_every_steps,
                     max_to_keep=config.train.keep_checkpoints, read_only=read_only)


def latest_checkpoint_step(workdir: str) -> int | None:
  """The step of the latest checkpoint in a training workdir (None: none); read-only."""
  workdir = absolute_path(workdir)
  checkpoints = checkpoints_of(workdir, load_config(workdir), read_only=True)
  try:
    return checkpoints.latest_step()
  finally:
    checkpoints.close()


def restore_latest(workdir: str, config: ml_collections.ConfigDict, abstract_state: Any):
  """The latest readable state in workdir, for reading: the checkpoints are opened
  read-only, a damaged step skipped and left in place; a ValueError naming the fix when
  there is none."""
  checkpoints = checkpoints_of(workdir, config, read_only=True)
  try:
    state = checkpoints.restore_latest(abstract_state)
  finally:
    checkpoints.close()
  if state is None:
    raise ValueError(f"{checkpoints.directory} holds no checkpoint; train first with "
                     f"python -m experiments.train (a prior: experiments.train_prior) "
                     f"--workdir={workdir}")
  return state


def new_evaluation_dir(workdir: str, step: int) -> str:
  """A new directory workdir/evaluations/step_<step>, or step_<step>-<n> where an earlier
  evaluation of the step is there (created, so that no other evaluation takes it)."""
  parent = epath.Path(workdir) / "evaluations"
  parent.mkdir(parents=True, exist_ok=True)
  for copy in range(10_000):
    directory = parent / (f"step_{step}" if copy == 0 else f"step_{step}-{copy}")
    try:
      directory.mkdir(exist_ok=False)
    except FileExistsError:
      continue
    return str(directory)
  raise ValueError(f"{parent} holds 10,000 evaluations of step {step}; remove some")


def new_samples_path(workdir: str) -> str:
  """A new file workdir/samples_<UTC time>.png (-<n> added where that is taken; created
  empty, so that no other run takes it), never the training run's samples.png."""
  stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
  for copy in range(10_000):
    path = os.path.join(workdir, f"samples_{stamp}{'' if copy == 0 else f'-{copy}'}.png")
    if "://" in path:  # a bucket has no exclusive create: a name not yet there
      if not epath.Path(path).exists():
        return path
      continue
    try:
      with open(path, "xb"):
        return path
    except FileExistsError:
      continue
  raise ValueError(f"{workdir} holds 10,000 samples_{stamp}*.png; remove some")
