"""Smoke tests of experiments/bench_sampling.py: the quick run prints a table and a
well-formed summary line last, and the summary reads the 32x32 grid (nan without it); the
quick --decoding run times both priors unguided and guided; --vs_gpt2 without
the peer times vqjax alone, and its ratios are the peer's minimum over vqjax's."""
import math
import re

import pytest

from experiments import bench_sampling, bench_sampling_peer

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


PEER_SUMMARY = re.compile(r"^summary: vs_gpt2_1thread=(\S+) vs_gpt2_2threads=(\S+)$")


def test_vs_gpt2_quick_without_gpt2_prints_vqjax_times_and_summary_last(capsys):
  results = bench_sampling.main(["--vs_gpt2", "--quick", "--skip_gpt2", "--threads=1",
                                 "--repetitions=1"])
  lines = capsys.readouterr().out.strip().splitlines()
  assert PEER_SUMMARY.match(lines[-1]), lines[-1]
  assert lines[-1] == "summary: vs_gpt2_1thread=nan vs_gpt2_2threads=nan"
  times = results[1]["times"]
  assert set(times) == {"vqjax"} and len(times["vqjax"]) == 1 and times["vqjax"][0] > 0
  assert results[1]["parameters"]["vqjax"] > 0


def test_peer_ratio_is_gpt2_minimum_over_vqjax_minimum():
  model = bench_sampling_peer.QUICK_PEER_MODEL._asdict()  # batch 2, 8x8: 128 tokens a batch
  one = {"model": model, "parameters": {"vqjax": 1, "gpt2": 1},
         "times": {"vqjax": [0.5, 0.25], "gpt2": [1.0, 2.0]}}
  two = {**one, "times": {"vqjax": [1.0], "gpt2": [1.5]}}
  assert bench_sampling_peer.ratio(one) == 4.0
  assert bench_sampling_peer.tokens_per_s(one, "vqjax") == 512.0
  assert bench_sampling_peer.summary_line({1: one, 2: two}) == (
      "summary: vs_gpt2_1thread=4.000 vs_gpt2_2threads=1.500")
  assert bench_sampling_peer.summary_line({1: one}).endswith("vs_gpt2_2threads=nan")
  assert "vqjax/gpt2" in bench_sampling_peer.table({1: one}).splitlines()[0]


def test_vs_gpt2_refuses_bad_repetitions_and_threads():
  with pytest.raises(ValueError, match="must be >= 1"):
    bench_sampling.main(["--vs_gpt2", "--repetitions=0"])
  with pytest.raises(ValueError, match="must be >= 1"):
    bench_sampling.main(["--vs_gpt2", "--threads=0"])
