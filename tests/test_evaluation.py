"""Summing a pass of evaluation batches into metrics, with a progress line on long passes."""
import logging

import numpy as np
import pytest

from vqjax.runner import evaluation


def _fake_eval_fn(state, batch):
  """What parallel.eval_step returns, for reconstructions equal to the images plus 0.1."""
  del state
  mask = batch["mask"].reshape(-1)
  counts = np.zeros((2, 4))
  counts[:, 0] = mask.sum()
  sums = {"count": mask.sum(), "squared_error": 0.01 * mask.sum(),
          "psnr": 10 * np.log10(4 / 0.01) * mask.sum(), "code_counts/": counts}
  return sums, batch["image"] + 0.1


def test_sums_batches_into_metrics_and_keeps_valid_examples_for_the_grid():
  images = np.random.RandomState(0).uniform(-1, 1, (2, 4, 3, 8, 8, 1)).astype(np.float32)
  masks = [np.ones((4, 3), bool), np.arange(12).reshape(4, 3) < 5]
  batches = [{"image": image, "mask": mask} for image, mask in zip(images, masks)]
  result = evaluation.evaluate(_fake_eval_fn, None, batches, data_variance=0.5,
                               grid_examples=20)
  assert result.metrics["examples"] == 17
  assert result.metrics["mse"] == pytest.approx(0.01)
  assert result.metrics["normalized_mse"] == pytest.approx(0.02)
  assert result.metrics["psnr"] == pytest.approx(10 * np.log10(400))
  # Residual counts [levels, K]: one perplexity per level.
  assert result.metrics["perplexity/0"] == pytest.approx(1.0)
  assert result.metrics["codes_used_fraction/1"] == pytest.approx(0.25)
  assert result.metrics["dead_codes/1"] == 3
  assert result.code_counts[""].shape == (2, 4)
  assert result.inputs.shape == (12, 8, 8, 1)  # from the first batch
  np.testing.assert_allclose(result.reconstructions, result.inputs + 0.1, rtol=1e-6)


def test_a_long_pass_logs_the_examples_done(caplog):
  images = np.zeros((3, 4, 3, 8, 8, 1), np.float32)
  batches = [{"image": image, "mask": np.ones((4, 3), bool)} for image in images]
  with caplog.at_level(logging.INFO):
    evaluation.evaluate(_fake_eval_fn, None, batches, data_variance=0.5,
                        progress_every_seconds=0.0)  # 0: a line after every batch
  # The heartbeat's lines (a first JAX call in this process may log its backends too).
  lines = [record.getMessage() for record in caplog.records
           if record.getMessage().startswith("evaluating")]
  assert [line.split(" in ")[0] for line in lines] == [
      "evaluating: 12 examples", "evaluating: 24 examples", "evaluating: 36 examples"]
  caplog.clear()
  with caplog.at_level(logging.INFO):
    evaluation.evaluate(_fake_eval_fn, None, batches, data_variance=0.5)
  assert not [r for r in caplog.records if r.getMessage().startswith("evaluating")]  # < 30 s


def test_usage_metrics_of_one_codebook():
  usage = evaluation.usage_metrics(np.array([2.0, 2.0, 0.0, 0.0]))
  assert float(usage["perplexity"]) == pytest.approx(2.0)
  assert float(usage["codes_used_fraction"]) == 0.5 and int(usage["dead_codes"]) == 2


def test_an_empty_split_is_an_error():
  batch = {"image": np.zeros((4, 1, 8, 8, 1), np.float32), "mask": np.zeros((4, 1), bool)}
  with pytest.raises(ValueError, match="yielded no examples"):
    evaluation.evaluate(_fake_eval_fn, None, [batch], data_variance=1.0)
