"""Smoke test of experiments/bench_kernel_gradient.py: both XLA sides run in a worker on
tiny shapes (equal gradients, checked there), and the table and summary line read as
documented (torch is not needed)."""
import math
import re

import pytest

from experiments import bench_kernel_gradient


def test_worker_times_both_xla_sides_and_the_summary_reads_as_documented():
  args = bench_kernel_gradient.parse_args(["--repetitions=2", "--skip_torch",
                                           "--shapes=2x8x8x16x16,1x4x6x8x24"])
  result = bench_kernel_gradient.worker(1, args)
  assert set(result["times"]) == {"2x8x8x16x16", "1x4x6x8x24"}
  for times in result["times"].values():
    assert set(times) == {"xla", "eigen"}
    assert all(len(ts) == 2 and all(0 < t < math.inf for t in ts) for ts in times.values())
  results = {1: result, 2: {"threads": 2, "times": {"4x8x8x16x16": {
      "xla": [0.4, 0.5], "eigen": [0.2, 0.3], "torch": [0.1, 0.2]}}}}
  table = bench_kernel_gradient.table(results)
  assert "xla/eigen" in table and "2.000" in table and "0.500" in table
  assert re.fullmatch(r"summary: eigen_vs_xla_1thread=\d+\.\d{3} eigen_vs_torch_1thread=nan "
                      r"eigen_vs_xla_2threads=2\.000 eigen_vs_torch_2threads=0\.500",
                      bench_kernel_gradient.summary_line(results))


def test_flops_count_the_multiply_adds_of_a_3x3_kernel_gradient():
  assert bench_kernel_gradient.flops((4, 64, 64, 64, 64)) == 2 * 4 * 64 * 64 * 9 * 64 * 64


def test_bad_shapes_are_refused_with_an_example():
  with pytest.raises(SystemExit, match="e.g. --shapes=4x64x64x64x64"):
    bench_kernel_gradient.shapes_from("4x64x64x64")
  assert bench_kernel_gradient.shapes_from("") == bench_kernel_gradient.SHAPES
