"""Writes what evaluators yield, once, in one place: TensorBoard, metrics.json, PNGs."""
from __future__ import annotations

import json
import os
from typing import Any, Iterable, NamedTuple

from absl import logging
from etils import epath
import jax
import numpy as np

from vqjax.runner import images, summaries, workdir as workdir_lib
from vqjax.runner.task import Evaluator

METRICS_FILE = "metrics.json"


def is_picture(value: Any) -> bool:
  return isinstance(value, np.ndarray) and value.ndim == 3


def evaluate(evaluators: Iterable[Evaluator], state) -> tuple[dict[str, float],
                                                               dict[str, np.ndarray]]:
  """(metrics, pictures) of every evaluator's (name, value) pairs on state."""
  metrics, pictures = {}, {}
  for evaluator in evaluators:
    for name, value in evaluator.run(state):
      if is_picture(value):
        pictures[name] = value
      else:
        metrics[name] = float(value)
  return metrics, pictures


def report(evaluators: Iterable[Evaluator], state, *, workdir: str | None,
           writer: summaries.SummaryWriter | None = None) -> dict:
  """Runs the evaluators on state; writes TensorBoard summaries (with writer) and, given a
  workdir, metrics.json and <name>.png of every picture there; returns the metrics with
  their 'step'."""
  step = int(jax.device_get(state.step))
  metrics, pictures = evaluate(evaluators, state)
  if writer is not None:
    writer.scalars(step, {f"eval/{name}": value for name, value in metrics.items()})
    for name, picture in pictures.items():
      writer.image(step, f"eval/{name}", picture)
    writer.flush()
  metrics = {"step": step, **metrics}
  if workdir is not None:
    write(workdir, metrics, pictures)
  logging.info("evaluation at step %d: %s", step, json.dumps(metrics))
  return metrics


class Evaluation(NamedTuple):
  step: int         # the checkpoint's
  metrics: dict     # as metrics.json holds them, with 'step'
  directory: str    # where metrics.json and the PNGs were written


def evaluate_into_new_directory(workdir: str, evaluators: Iterable[Evaluator],
                                state) -> Evaluation:
  """Runs the evaluators on state (a checkpoint of workdir) and writes metrics.json and the
  PNGs into a new workdir/evaluations/step_<N> (step_<N>-<n> after an earlier evaluation of
  step N), named once the evaluation is done, never over the training run's files."""
  workdir = workdir_lib.absolute_path(workdir)
  step = int(jax.device_get(state.step))
  metrics, pictures = evaluate(evaluators, state)
  metrics = {"step": step, **metrics}
  directory = os.path.join(workdir, "evaluations", f"step_{step}")
  if jax.process_index() == 0:
    directory = workdir_lib.new_evaluation_dir(workdir, step)
    write(directory, metrics, pictures)
  logging.info("evaluation of step %d written to %s: %s", step, directory, json.dumps(metrics))
  return Evaluation(step, metrics, directory)


def write(directory: str, metrics: dict, pictures: dict[str, np.ndarray]) -> None:
  """Writes metrics.json and <name>.png of every picture into directory (process 0)."""
  if jax.process_index() != 0:
    return
  for name, picture in pictures.items():
    images.save_png(os.path.join(directory, f"{name}.png"), picture)
  (epath.Path(directory) / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
