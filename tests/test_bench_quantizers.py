"""Smoke tests of experiments/bench_quantizers.py: the quick run prints a table and a
well-formed summary line, and missing peers become n/a / nan instead of errors."""
import importlib.util
import math
import re

from experiments import bench_quantizers

NUMBER = r"(?:nan|\d+\.\d+)"
SUMMARY = re.compile(
    rf"^summary: vs_vector_quantize_pytorch=({NUMBER}) vs_haiku=({NUMBER}) "
    rf"matmul_fraction=({NUMBER}) matmul_fraction_d256=({NUMBER})$")


def quick_argv():
  argv = ["--quick", "--repeats", "1"]
  if importlib.util.find_spec("vector_quantize_pytorch") is None:
    argv.append("--skip-torch")
  if importlib.util.find_spec("haiku") is None:
    argv.append("--skip-haiku")
  return argv


def test_quick_run_prints_table_and_summary_last(capsys):
  results = bench_quantizers.main(quick_argv())
  lines = capsys.readouterr().out.strip().splitlines()
  assert SUMMARY.match(lines[-1]), lines[-1]
  assert lines[-3].split()[:3] == ["N", "dim", "K"]
  assert lines[-2].split()[:3] == ["8192", "64", "512"]
  (result,) = results
  assert result.vqjax_s > 0
  assert 0 < result.matmul_fraction < math.inf


def test_summary_reads_the_named_cases():
  results = [bench_quantizers.Result(case, vqjax_s=0.01, vector_quantize_pytorch_s=0.2,
                                     haiku_s=0.05, matmul_flops_per_s=1e11)
             for case in bench_quantizers.CASES]
  line = bench_quantizers.summary_line(results)
  assert SUMMARY.match(line), line
  assert "vs_vector_quantize_pytorch=20.000 vs_haiku=5.000" in line
  assert "matmul_fraction_d256=nan" not in line


def test_missing_cases_and_peers_give_nan(capsys):
  def missing_peer(case, repeats):
    raise ImportError("No module named 'torch'")

  seconds = bench_quantizers.time_peer("vector-quantize-pytorch", missing_peer,
                                       bench_quantizers.CASES[0], 1, skip=False)
  assert math.isnan(seconds)
  assert 'pip install -e ".[bench]"' in capsys.readouterr().out
  result = bench_quantizers.Result(bench_quantizers.CASES[0], vqjax_s=0.01,
                                   vector_quantize_pytorch_s=math.nan, haiku_s=math.nan,
                                   matmul_flops_per_s=1e11)
  assert "n/a" in bench_quantizers.format_table([result])
  line = bench_quantizers.summary_line([result])
  assert line == ("summary: vs_vector_quantize_pytorch=nan vs_haiku=nan "
                  "matmul_fraction=nan matmul_fraction_d256=nan")
