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


def test_progress_line_has_rates_and_eta():
  progress = summaries.Progress(start_step=0, total_steps=100, global_batch_size=32)
  rates = progress.rates(10)
  assert rates["images_per_second"] == pytest.approx(32 * rates["steps_per_second"])
  line = progress.line(10, {"loss": 0.5, "perplexity": 12.0}, rates)
  assert line.startswith("step 10/100 (10%) | loss 0.5 perplexity 12 |")
  assert "steps/s" in line and "images/s" in line and "ETA 0:" in line


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
