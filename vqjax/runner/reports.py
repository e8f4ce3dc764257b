"""Writes what evaluators yield, once, in one place: TensorBoard, metrics.json, PNGs."""
from __future__ import annotations

import json
import os
from typing import Any, Iterable

from absl import logging
from etils import epath
import jax
import numpy as np

from vqjax.runner import images, summaries
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


def write(directory: str, metrics: dict, pictures: dict[str, np.ndarray]) -> None:
  """Writes metrics.json and <name>.png of every picture into directory (process 0)."""
  if jax.process_index() != 0:
    return
  for name, picture in pictures.items():
    images.save_png(os.path.join(directory, f"{name}.png"), picture)
  (epath.Path(directory) / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
