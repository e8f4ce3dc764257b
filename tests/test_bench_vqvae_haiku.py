"""experiments.bench_vqvae_haiku: vqjax's Sonnet-sized VQ-VAE step against the same model in
dm-haiku, interleaved in one process."""
import pytest

from experiments import bench_vqvae_haiku

pytest.importorskip("haiku", reason="dm-haiku is a test dependency: pip install -e .[test]")


def test_the_tiny_models_match_and_are_timed_interleaved():
  result = bench_vqvae_haiku.worker(1, tiny=True, repetitions=2)
  assert result["parameters"] > 1000
  assert list(result["times"]) == ["vqjax", "haiku"]
  assert all(len(times) == 2 and min(times) > 0 for times in result["times"].values())
  table = bench_vqvae_haiku.table({1: result})
  assert table.splitlines()[0].split() == ["threads", "framework", "min", "s", "median", "s",
                                           "haiku", "/", "vqjax"]
  assert bench_vqvae_haiku.summary_line({1: result}) == (
      f"summary: vs_haiku_1thread={bench_vqvae_haiku.ratio(result):.3f}")


def test_the_ratio_is_haikus_fastest_step_over_vqjaxs():
  results = {2: {"times": {"vqjax": [0.5, 0.25], "haiku": [1.0, 2.0]}},
             1: {"times": {"vqjax": [1.0], "haiku": [3.0, 1.5]}}}
  assert bench_vqvae_haiku.ratio(results[2]) == 4.0
  assert bench_vqvae_haiku.summary_line(results) == (
      "summary: vs_haiku_1thread=1.500 vs_haiku_2threads=4.000")


def test_a_haiku_model_of_other_sizes_is_refused(monkeypatch):
  original = bench_vqvae_haiku.haiku_forward

  def wider(config):
    config = config.copy_and_resolve_references()
    config.model.hidden_channels += 1
    return original(config)
  monkeypatch.setattr(bench_vqvae_haiku, "haiku_forward", wider)
  with pytest.raises(RuntimeError, match="the two models differ"):
    bench_vqvae_haiku.worker(1, tiny=True, repetitions=1)
