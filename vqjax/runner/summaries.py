"""What a run reports: TensorBoard event files, a console progress line with an ETA, and
the buffer that fetches each step's metrics from the devices and stops on a NaN.

TensorBoard files are written by clu's plain SummaryWriter (tf.summary.scalar and
tf.summary.image); not by clu's create_default_writer, whose LoggingWriter would log every
scalar at INFO beside the progress line.
"""
from __future__ import annotations

import datetime
import math
import time
from typing import Mapping

from absl import logging
import jax
import numpy as np


class NonFiniteLossError(FloatingPointError):
  """The loss became NaN or infinite at `step`; training stopped without saving that
  state. The loss of step n is computed from the state of step n - 1, so that state
  diverged too (the loop sets its checkpoint aside)."""

  def __init__(self, message: str, step: int | None = None):
    super().__init__(message)
    self.step = step


# A finite loss with non-finite gradients would still make the next parameters NaN.
_GUARDED = ("loss", "grad_norm")


def flatten_metrics(metrics: Mapping[str, object]) -> dict[str, float]:
  """Host floats; array metrics (per level of a residual codebook) become name/0, name/1."""
  flat = {}
  for name, value in metrics.items():
    value = np.asarray(value, np.float64)
    if value.ndim == 0:
      flat[name] = float(value)
    else:
      flat.update({f"{name}/{i}": float(v) for i, v in enumerate(value.reshape(-1))})
  return flat


class MetricsBuffer:
  """Keeps each step's metrics on the device until asked, so the host never waits on the
  step it just dispatched; fetching checks the loss of every step in order.

  add(step, metrics) after each step; fetch(upto) brings steps <= upto to the host and
  raises NonFiniteLossError naming the first step whose loss (or gradient norm) is NaN or
  infinite;
  mean() averages what was fetched since the last mean().
  """

  def __init__(self):
    self._pending: list[tuple[int, dict]] = []
    self._fetched: list[dict[str, float]] = []

  def add(self, step: int, metrics: Mapping[str, jax.Array]) -> None:
    self._pending.append((step, metrics))

  def fetch(self, upto: int) -> None:
    ready = [(step, metrics) for step, metrics in self._pending if step <= upto]
    self._pending = [(step, metrics) for step, metrics in self._pending if step > upto]
    for step, metrics in ready:
      values = flatten_metrics(jax.device_get(metrics))
      if not all(math.isfinite(values[name]) for name in _GUARDED if name in values):
        terms = ", ".join(f"{name}={value:.4g}" for name, value in values.items()
                          if name.endswith("loss") or name == "grad_norm")
        raise NonFiniteLossError(
            f"non-finite loss at step {step} ({terms}); training stopped and that state "
            "was not saved. Restart from the last checkpoint with a lower learning rate or "
            "gradient clipping (config.optimizer.grad_clip_norm)", step=step)
      self._fetched.append(values)

  def mean(self) -> dict[str, float]:
    fetched, self._fetched = self._fetched, []
    if not fetched:
      return {}
    return {name: float(np.mean([values[name] for values in fetched])) for name in fetched[0]}


class Progress:
  """The console's progress line and the rates TensorBoard gets, smooth from the start.

  The first report's time is start-up: compiling the step (and the first batches), so it
  is reported as compile_seconds, not as a rate. Rates after it are averages since that
  first report, so the ETA does not jump with one slow or fast interval (an evaluation
  in between counts, as it will again). due(step) asks for a line at the first step, so
  a user sees the compile time at once, then every `every_seconds` of wall time.
  """

  def __init__(self, *, start_step: int, total_steps: int, global_batch_size: int,
               every_seconds: float = 30.0, clock=time.monotonic):
    self._start_step, self._total, self._batch = start_step, total_steps, global_batch_size
    self._every, self._clock = every_seconds, clock
    self._created = clock()
    self._first: tuple[int, float] | None = None  # (step, time) of the first report
    self._last_time = self._created

  def due(self, step: int) -> bool:
    """True at the first step of the run and whenever every_seconds have passed since
    the last report: the loop reports then as well as every log_every_steps."""
    if step == self._start_step + 1:
      return True
    return self._clock() - self._last_time >= self._every

  def rates(self, step: int) -> dict[str, float]:
    """{'compile_seconds'} at the first report; then steps_per_second and
    images_per_second averaged since the first report."""
    now = self._clock()
    self._last_time = now
    if self._first is None:
      self._first = (step, now)
      return {"compile_seconds": now - self._created}
    first_step, first_time = self._first
    steps_per_second = (step - first_step) / max(now - first_time, 1e-9)
    return {"steps_per_second": steps_per_second,
            "images_per_second": steps_per_second * self._batch}

  def line(self, step: int, metrics: Mapping[str, float], rates: Mapping[str, float]) -> str:
    shown = " ".join(f"{name} {metrics[name]:.4g}" for name in (
        "loss", "reconstruction_loss", "quantizer_loss", "perplexity", "top/perplexity",
        "bottom/perplexity", "codes_used_fraction") if name in metrics)
    head = f"step {step}/{self._total} ({step / self._total:.0%}) | {shown}"
    if "steps_per_second" not in rates:
      steps = step - self._start_step
      what = "the first step" if steps == 1 else f"the first {steps} steps"
      return (f"{head} | compiled and ran {what} in {rates['compile_seconds']:.1f} s; "
              "rate and ETA follow")
    left = (self._total - step) / max(rates["steps_per_second"], 1e-9)
    eta = str(datetime.timedelta(seconds=round(left)))
    return f"{head} | {_rate(rates)} | ETA {eta}"


def _rate(rates: Mapping[str, float]) -> str:
  """'12.5 steps/s 400 images/s', or '3.2 s/step 20 images/s' for slow steps."""
  per_second = rates["steps_per_second"]
  steps = f"{per_second:.1f} steps/s" if per_second >= 1 else f"{1 / per_second:.1f} s/step"
  images = rates["images_per_second"]
  return f"{steps} {images:.0f} images/s" if images >= 10 else f"{steps} {images:.2g} images/s"


class Heartbeat:
  """A line every `every_seconds` of a long pass (an evaluation over a split), so that a
  pass of minutes does not look hung: '<what>: <done> <unit> in <s> s'."""

  def __init__(self, what: str, *, unit: str = "examples", every_seconds: float = 30.0,
               clock=time.monotonic):
    self._what, self._unit, self._every, self._clock = what, unit, every_seconds, clock
    self._start = self._last = clock()

  def tick(self, done: int) -> None:
    now = self._clock()
    if now - self._last >= self._every:
      self._last = now
      logging.info("%s: %d %s in %.0f s", self._what, done, self._unit, now - self._start)


class SummaryWriter:
  """TensorBoard scalars and images in `logdir`, its file created at the first write (a
  run refused before training leaves no file); a no-op that creates no files where
  enabled is False (every process but the first)."""

  def __init__(self, logdir: str, *, enabled: bool = True):
    self._logdir, self._enabled = logdir, enabled
    self._writer = None

  def _open(self):
    if self._writer is None:
      # Imported here: clu's writers load TensorFlow, which only a run that writes needs.
      from clu import metric_writers  # pylint: disable=import-outside-toplevel
      # A MultiWriter over no writers is clu's own no-op writer.
      self._writer = (metric_writers.SummaryWriter(self._logdir) if self._enabled
                      else metric_writers.MultiWriter([]))
    return self._writer

  def scalars(self, step: int, values: Mapping[str, float]) -> None:
    self._open().write_scalars(step, {tag: float(value) for tag, value in values.items()})

  def image(self, step: int, tag: str, pixels: np.ndarray) -> None:
    """uint8 [H, W, C] pixels as one TensorBoard image."""
    self._open().write_images(step, {tag: np.asarray(pixels, np.uint8)})

  def flush(self) -> None:
    if self._writer is not None:
      self._writer.flush()

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
