"""Reporting: the metrics buffer and its NaN guard, the progress line, TensorBoard files."""
import logging

import jax.numpy as jnp
import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util import tensor_util
import tensorflow as tf

from vqjax.runner import summaries


def test_buffer_fetches_in_order_averages_and_flattens_levels():
  buffer = summaries.MetricsBuffer()
  for step in (1, 2, 3):
    buffer.add(step, {"loss": jnp.float32(step), "perplexity": jnp.array([step, 2.0 * step])})
  buffer.fetch(upto=2)
  assert buffer.mean() == {"loss": 1.5, "perplexity/0": 1.5, "perplexity/1": 3.0}
  assert buffer.mean() == {}
  buffer.fetch(upto=3)
  assert buffer.mean()["loss"] == 3.0


@pytest.mark.parametrize("bad", [{"loss": np.nan}, {"loss": 1.0, "grad_norm": np.inf}])
def test_buffer_names_the_first_step_with_a_non_finite_loss(bad):
  buffer = summaries.MetricsBuffer()
  buffer.add(7, {"loss": jnp.float32(1.0), "grad_norm": jnp.float32(1.0)})
  buffer.add(8, {k: jnp.float32(v) for k, v in bad.items()})
  buffer.add(9, {"loss": jnp.float32(np.nan)})
  with pytest.raises(summaries.NonFiniteLossError, match=r"non-finite loss at step 8 "):
    buffer.fetch(upto=9)


class FakeClock:
  def __init__(self):
    self.now = 0.0

  def __call__(self):
    return self.now


def test_progress_reports_compile_time_first_then_a_rate_and_eta():
  clock = FakeClock()
  progress = summaries.Progress(start_step=0, total_steps=100, global_batch_size=32,
                                clock=clock)
  clock.now = 12.3  # the first step: compilation
  rates = progress.rates(1)
  assert rates == {"compile_seconds": pytest.approx(12.3)}
  line = progress.line(1, {"loss": 0.5, "perplexity": 12.0}, rates)
  assert line == ("step 1/100 (1%) | loss 0.5 perplexity 12 | compiled and ran the first "
                  "step in 12.3 s; rate and ETA follow")
  clock.now = 14.3  # 10 steps in 2 s
  rates = progress.rates(11)
  assert rates["steps_per_second"] == pytest.approx(5.0)
  assert rates["images_per_second"] == pytest.approx(160.0)
  line = progress.line(11, {"loss": 0.5}, rates)
  assert line == "step 11/100 (11%) | loss 0.5 | 5.0 steps/s 160 images/s | ETA 0:00:18"


def test_progress_names_several_steps_when_the_first_report_comes_late():
  clock = FakeClock()
  progress = summaries.Progress(start_step=40, total_steps=100, global_batch_size=8,
                                clock=clock)
  clock.now = 9.0
  line = progress.line(45, {}, progress.rates(45))
  assert "compiled and ran the first 5 steps in 9.0 s" in line


def test_progress_eta_is_smooth_over_uneven_intervals():
  """The rate is the average since the first report: a fast interval after a slow one
  does not make the ETA jump (it used the last interval's rate only)."""
  clock = FakeClock()
  progress = summaries.Progress(start_step=0, total_steps=1000, global_batch_size=1,
                                clock=clock)
  clock.now = 30.0
  progress.rates(1)
  etas = []
  for step, now in ((101, 40.0), (201, 60.0), (301, 62.0), (401, 70.0)):
    clock.now = now
    etas.append(progress.rates(step)["steps_per_second"])
  assert etas == pytest.approx([10.0, 200 / 30, 300 / 32, 400 / 40])
  line = progress.line(401, {}, {"steps_per_second": 0.25, "images_per_second": 0.25})
  assert "4.0 s/step 0.25 images/s | ETA 0:39:56" in line  # slow steps read as s/step


def test_progress_is_due_at_the_first_step_and_then_every_interval():
  clock = FakeClock()
  progress = summaries.Progress(start_step=10, total_steps=100, global_batch_size=8,
                                every_seconds=30.0, clock=clock)
  assert progress.due(11) and not progress.due(12)
  clock.now = 5.0
  progress.rates(11)
  clock.now = 34.0
  assert not progress.due(20)
  clock.now = 35.0
  assert progress.due(21)
  progress.rates(21)
  assert not progress.due(22)


def test_writer_writes_scalars_and_images_tensorboard_reads(tmp_path, caplog):
  writer = summaries.SummaryWriter(str(tmp_path))
  with caplog.at_level(logging.INFO):
    writer.scalars(3, {"train/loss": 0.25, "train/perplexity": np.float32(12.0)})
    writer.scalars(4, {"train/loss": 0.125})
    writer.image(3, "eval/grid", np.full((6, 4, 1), 200, np.uint8))
    writer.flush()
  assert not caplog.records  # the console has the progress line; scalars go to files only
  writer.close()
  events = event_accumulator.EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
  events.Reload()
  assert set(events.Tags()["tensors"]) == {"train/loss", "train/perplexity", "eval/grid"}
  loss = [(event.step, float(tensor_util.make_ndarray(event.tensor_proto)))
          for event in events.Tensors("train/loss")]
  assert loss == [(3, 0.25), (4, 0.125)]
  assert events.SummaryMetadata("train/loss").plugin_data.plugin_name == "scalars"
  (grid,) = events.Tensors("eval/grid")
  width, height, png = tensor_util.make_ndarray(grid.tensor_proto)
  assert (grid.step, width, height) == (3, b"4", b"6")
  assert events.SummaryMetadata("eval/grid").plugin_data.plugin_name == "images"
  pixels = tf.io.decode_png(png).numpy()
  assert pixels.shape == (6, 4, 1) and np.all(pixels == 200)


def test_disabled_writer_writes_nothing(tmp_path):
  writer = summaries.SummaryWriter(str(tmp_path / "logs"), enabled=False)
  writer.scalars(1, {"loss": 1.0})
  writer.image(1, "eval/grid", np.zeros((6, 4, 3), np.uint8))
  writer.flush()
  writer.close()
  assert not (tmp_path / "logs").exists()
