"""Smoke tests of experiments/bench_sampling.py: the quick run prints a table and a
well-formed summary line last, and the summary reads the 32x32 grid (nan without it); the
quick --decoding run times both priors unguided and guided."""
import math
import re

from experiments import bench_sampling

SUMMARY = re.compile(r"^summary: cache_speedup_32x32=(nan|\d+\.\d+)$")


def test_quick_run_prints_table_and_summary_last(capsys):
  results = bench_sampling.main(["--quick"])
  lines = capsys.readouterr().out.strip().splitlines()
  assert SUMMARY.match(lines[-1]), lines[-1]
  assert lines[-4].split()[:2] == ["grid", "batch"]
  assert [line.split()[0] for line in lines[-3:-1]] == ["8x8", "32x32"]
  for result in results:
    assert result.cached_tokens_per_s > 0 and result.full_tokens_per_s > 0
    assert 0 < result.speedup < math.inf


def test_summary_reads_the_32x32_grid():
  results = [bench_sampling.Result(bench_sampling.Case(32, full_steps=2, repeats=1),
                                   batch_size=8, cached_s=1.024, full_s=0.5)]
  # cached: 8 * 1024 / 1.024 = 8000 tok/s; full: 8 * 2 / 0.5 = 32 tok/s.
  assert bench_sampling.summary_line(results) == "summary: cache_speedup_32x32=250.00"
  assert bench_sampling.summary_line(results[:0]) == "summary: cache_speedup_32x32=nan"


DECODING_SUMMARY = re.compile(r"^summary: maskgit_vs_cache=\d+\.\d+ "
                              r"guided_cost_transformer=\d+\.\d+ guided_cost_maskgit=\d+\.\d+$")


def test_quick_decoding_run_compares_maskgit_with_the_cache_and_guidance(capsys):
  results = bench_sampling.main(["--decoding", "--quick"])
  lines = capsys.readouterr().out.strip().splitlines()
  assert DECODING_SUMMARY.match(lines[-1]), lines[-1]
  assert [(r.prior, r.guided) for r in results] == [
      ("transformer (cache)", False), ("transformer (cache)", True),
      ("maskgit (T=8)", False), ("maskgit (T=8)", True)]
  assert all(r.images_per_s > 0 for r in results)
