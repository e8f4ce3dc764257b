"""Reporting: the metrics buffer and its NaN guard, the progress line, TensorBoard files."""
import glob
import os

import jax.numpy as jnp
import numpy as np
import pytest
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


def test_writer_writes_scalars_and_images_tensorboard_reads(tmp_path):
  writer = summaries.SummaryWriter(str(tmp_path))
  writer.scalars(3, {"train/loss": 0.25})
  writer.image(3, "eval/grid", np.zeros((6, 4, 1), np.uint8))
  writer.close()
  values = {}
  for path in glob.glob(os.path.join(tmp_path, "events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        values[value.tag] = (event.step, value.metadata.plugin_data.plugin_name,
                             tf.make_ndarray(value.tensor))
  assert values["train/loss"][:2] == (3, "scalars") and values["train/loss"][2] == 0.25
  step, plugin, tensor = values["eval/grid"]
  assert (step, plugin, tensor[0], tensor[1]) == (3, "images", b"4", b"6")
  assert tf.io.decode_png(tensor[2]).shape == (6, 4, 1)


def test_disabled_writer_writes_nothing(tmp_path):
  writer = summaries.SummaryWriter(str(tmp_path / "logs"), enabled=False)
  writer.scalars(1, {"loss": 1.0})
  writer.close()
  assert not (tmp_path / "logs").exists()
