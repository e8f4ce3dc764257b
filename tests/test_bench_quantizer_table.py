"""experiments.bench_quantizer_table: the rows' train steps, interleaved in one process."""
import pytest

from experiments import bench_quantizer_table


def test_tiny_rows_are_timed_interleaved_and_summarized():
  # lfq: its row weights its loss terms (config.train.quantizer_loss_weights), which a
  # step refuses if they name a term the quantizer does not report.
  result = bench_quantizer_table.worker(1, rows=["fsq", "vq_ema", "lfq"], tiny=True,
                                        repetitions=2)
  assert list(result["times"]) == ["fsq", "vq_ema", "lfq"]
  assert all(len(times) == 2 and min(times) > 0 for times in result["times"].values())
  table = bench_quantizer_table.table({1: result})
  assert table.splitlines()[0].split() == ["threads", "row", "min", "s", "median", "s",
                                           "steps", "steps/s"]
  summary = bench_quantizer_table.summary_line({1: result})
  assert summary == ("summary: threads=1 " + " ".join(
      f"{row}={1 / min(times):.3f}" for row, times in result["times"].items()))


def test_steps_per_second_is_one_over_the_fastest_step():
  assert bench_quantizer_table.steps_per_second([0.5, 0.25, 2.0]) == 4.0
  results = {2: {"times": {"vq": [1.0]}}, 1: {"times": {"vq": [0.5], "lfq": [0.2, 0.1]}}}
  assert bench_quantizer_table.summary_line(results) == "summary: threads=1 vq=2.000 lfq=10.000"


def test_unknown_rows_are_refused_with_the_known_ones():
  assert bench_quantizer_table.parse_args(["--rows=vq,lfq"]).rows == ["vq", "lfq"]
  with pytest.raises(SystemExit, match="unknown or no rows \\['nope'\\]; choose from vq,"):
    bench_quantizer_table.parse_args(["--rows=vq,nope"])
