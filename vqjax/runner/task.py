"""What the one training loop (vqjax.runner.loop) needs of an experiment: a Task.

A task is built from a config by its own module (tokenizer_task.tokenizer_task,
prior_task.prior_task); the loop knows nothing else about it, so a new kind of model
(a MaskGIT prior, say) is a new task module and no change to the loop.

    abstract_state    the state's shapes, dtypes and placement (what checkpoints restore
                      into); building it runs the model's checks without compiling
    init_state()      a fresh state on the local devices
    initialize(state, batches) -> (state, batches)
                      once, on a fresh state only (e.g. k-means codebooks on the first
                      batch); batches that it reads must be handed back
    make_train_step() the pmapped (state, batch) -> (state, metrics), the state donated;
                      built once per run (it may read weights, e.g. LPIPS)
    train_batches(start_step)
                      the training batches from batch start_step on: the same batches on
                      every restart
    make_evaluators() the Evaluators run at config.train.eval_every_steps and at the end
    learning_rate(step)
                      the schedule's value, for the logs

An Evaluator follows big_vision's protocol: `run(state)` goes over its split and yields
(name, value) pairs: a float (a metric) or a uint8 [H, W, C] array (a picture). The
runner (vqjax.runner.reports) writes them: metrics.json, <name>.png, TensorBoard.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, NamedTuple, Protocol, Sequence

import ml_collections


class Evaluator(Protocol):

  def run(self, state: Any) -> Iterator[tuple[str, Any]]:
    ...


def _unchanged(state, batches):
  return state, batches


class Task(NamedTuple):
  config: ml_collections.ConfigDict
  abstract_state: Any
  init_state: Callable[[], Any]
  make_train_step: Callable[[], Callable]
  train_batches: Callable[[int], Iterator[dict]]
  make_evaluators: Callable[[], Sequence[Evaluator]]
  learning_rate: Callable[[int], float]
  initialize: Callable[[Any, Iterator[dict]], tuple[Any, Iterator[dict]]] = _unchanged
