"""Smoke test of experiments/bench_fid.py: vqjax's side of the FID feature pass runs in a
worker, and the table and summary line read as documented (torch is not needed)."""
import math
import re

import pytest

from experiments import bench_fid


def test_worker_times_vqjax_and_the_summary_reads_as_documented(capsys):
  try:
    result = bench_fid.worker(1, bench_fid.parse_args(["--batch=1", "--repetitions=2",
                                                        "--skip_torch"]))
  except ValueError as error:  # the Inception weights' package is missing
    pytest.skip(f"FID Inception weights not installed ({error})")
  times = result["times"]["vqjax"]
  assert len(times) == 2 and all(0 < t < math.inf for t in times)
  results = {1: result, 2: {"threads": 2, "times": {"vqjax": [0.5, 0.6],
                                                     "torchscript": [1.0, 1.5]}}}
  table = bench_fid.table(results, batch=10)
  assert "torch/vqjax" in table and "2.000" in table  # 1.0 / 0.5
  assert re.fullmatch(r"summary: vs_torchscript_1thread=nan vs_torchscript_2threads=2\.000 "
                      r"images_per_second_2threads=20\.0", bench_fid.summary_line(results, 10))
  accelerator = {0: {"threads": 0, "times": {"vqjax": [0.25]}}}
  assert bench_fid.summary_line(accelerator, 10) == ("summary: "
                                                     "images_per_second_accelerator=40.0")


def test_bad_arguments_are_refused():
  with pytest.raises(SystemExit):
    bench_fid.parse_args(["--batch=0"])
  with pytest.raises(SystemExit, match="0 alone"):
    bench_fid.main(["--threads=0,1"])
