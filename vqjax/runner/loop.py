"""train_and_evaluate(task, workdir): the one training loop, for every task, restartable
at any point.

    workdir/config.json          the config (vqjax.runner.workdir); a restart with another
                                 config is checked first (vqjax.runner.config_drift)
    workdir/checkpoints/<step>   train states, every config.train.checkpoint_every_steps
                                 and at the end, the last config.train.keep_checkpoints
    workdir/tensorboard/         train and eval scalars and pictures
    workdir/metrics.json         the final evaluation, and <name>.png of every picture
                                 the task's evaluators yield (vqjax.runner.reports)

A restart restores the latest readable checkpoint and reads on from batch state.step, so
it ends with the parameters of an uninterrupted run.

SIGTERM, from the first line to the last: before training starts the run returns None
having written nothing (no config.json, no checkpoint); during training it saves a checkpoint at the current step and
returns None; during the final save it lets the save finish and returns None before
evaluating (a restart then only evaluates). A preempted run never dies of the signal.

A NaN or infinite loss raises NonFiniteLossError naming the step. Step n's loss is
computed from the state of step n - 1, so that state diverged too: if it was saved, its
checkpoint is moved to checkpoints.diverged/, and the error names the step a restart
resumes from, which is one whose own loss was finite.
"""
from __future__ import annotations

import contextlib
import os
import time

from absl import logging
from etils import epath
import flax.jax_utils
import jax

from vqjax.runner import (config_drift, host_allocator, reports, summaries,
                          workdir as workdir_lib)
from vqjax.runner.preemption import Preemption
from vqjax.runner.task import Task
from vqjax.train.checkpoints import Checkpoints


def train_and_evaluate(task: Task, workdir: str) -> dict | None:
  """Trains task (or resumes it) and evaluates it; returns the final metrics, None if
  preempted."""
  workdir = workdir_lib.absolute_path(workdir)  # local, or gs://... shared by a pod
  allocator_hint = host_allocator.hint(os.environ, jax.default_backend())
  if allocator_hint:
    logging.info(allocator_hint)
  with Preemption() as preemption, training_run(task, workdir) as (checkpoints, writer):
    if _stop_before_training(preemption, checkpoints):
      return None
    saved = workdir_lib.saved_config(workdir)
    if saved is not None and checkpoints.all_steps():
      config_drift.check_resume(saved, task.config, workdir=workdir)  # before any change
    state = checkpoints.restore_latest(task.abstract_state)  # refuses another config's
    if jax.process_index() == 0:  # only once the checkpoints are known to be this config's
      workdir_lib.save_config(task.config, workdir)
    start_step = 0 if state is None else int(state.step)
    batches = task.train_batches(start_step)
    if state is None:
      state, batches = task.initialize(task.init_state(), batches)
    else:
      logging.info("resuming from the checkpoint at step %d in %s", start_step,
                   checkpoints.directory)
    evaluators = task.make_evaluators()
    state = train_steps(task, state, batches, checkpoints, writer, evaluators, preemption)
    if state is None:
      return None
    checkpoints.save(state)
    checkpoints.wait()
    if preemption.signalled():
      logging.warning("preempted (SIGTERM) after the final checkpoint in %s; run the same "
                      "command again to evaluate", checkpoints.directory)
      return None
    return reports.report(evaluators, state, workdir=workdir, writer=writer)


def _stop_before_training(preemption: Preemption, checkpoints: Checkpoints) -> bool:
  if not preemption.signalled():
    return False
  logging.warning("preempted (SIGTERM) before training started; nothing was written to %s; "
                  "run the same command again", checkpoints.directory)
  return True


@contextlib.contextmanager
def training_run(task: Task, workdir: str):
  """Opens a training workdir: yields (checkpoints, TensorBoard writer); on a non-finite
  loss sets the diverged state's checkpoint aside, names the step a restart resumes from
  and re-raises; always lets pending checkpoint writes finish and closes both."""
  lead = jax.process_index() == 0
  epath.Path(workdir).mkdir(parents=True, exist_ok=True)
  checkpoints = workdir_lib.checkpoints_of(workdir, task.config)
  writer = summaries.SummaryWriter(os.path.join(workdir, "tensorboard"), enabled=lead)
  try:
    yield checkpoints, writer
  except summaries.NonFiniteLossError as error:
    checkpoints.wait()
    raise summaries.NonFiniteLossError(
        f"{error} {_set_aside_diverged(checkpoints, error.step)}", step=error.step) from None
  finally:
    checkpoints.wait()
    checkpoints.close()
    writer.close()


def _set_aside_diverged(checkpoints: Checkpoints, step: int | None) -> str:
  """Moves the checkpoint of the state whose loss was not finite (step - 1) aside; says
  where a restart resumes."""
  if step is not None and step - 1 in checkpoints.all_steps():
    checkpoints.move_aside(step - 1, f"holds the state whose loss at step {step} was not "
                           "finite", folder="diverged")
  latest = checkpoints.latest_step()
  if latest is None:
    return ("No checkpoint of a state with a finite loss is left, so a restart begins at "
            "step 0.")
  return f"A restart resumes from the checkpoint at step {latest}, whose loss was finite."


def train_steps(task: Task, state, batches, checkpoints: Checkpoints,
                writer: summaries.SummaryWriter, evaluators, preemption: Preemption):
  """Steps the task's train step from state.step to config.train.num_steps; None when
  preempted (after saving)."""
  train_config, start_step = task.config.train, int(state.step)
  num_steps = train_config.num_steps
  if start_step >= num_steps:
    return state
  train_fn = task.make_train_step()
  buffer = summaries.MetricsBuffer()
  progress = summaries.Progress(start_step=start_step, total_steps=num_steps,
                                global_batch_size=task.config.data.batch_size)
  batches = flax.jax_utils.prefetch_to_device(batches, 2)
  started = time.monotonic()
  for step in range(start_step + 1, num_steps + 1):  # step: the number of updates done
    state, metrics = train_fn(state, next(batches))
    buffer.add(step, metrics)
    buffer.fetch(upto=step - 1)  # a step behind, so the devices never wait on the host
    preempted = preemption.requested(step)
    if step % train_config.log_every_steps == 0 or step == num_steps or progress.due(step):
      buffer.fetch(upto=step)
      values, rates = buffer.mean(), progress.rates(step)
      values["learning_rate"] = float(task.learning_rate(step - 1))
      writer.scalars(step, {f"train/{name}": value
                            for name, value in {**values, **rates}.items()})
      logging.info(progress.line(step, values, rates))
    if checkpoints.due(step) or preempted:
      buffer.fetch(upto=step)  # never save a state whose loss was not finite
      checkpoints.save(state)
    if preempted:
      checkpoints.wait()
      logging.warning("preempted (SIGTERM) at step %d: saved a checkpoint in %s; run the "
                      "same command again to resume", step, checkpoints.directory)
      return None
    eval_every = train_config.eval_every_steps
    if eval_every and step % eval_every == 0 and step < num_steps:
      reports.report(evaluators, state, workdir=None, writer=writer)
  buffer.fetch(upto=num_steps)
  logging.info("trained steps %d to %d in %.1f s", start_step + 1, num_steps,
               time.monotonic() - started)
  return state
