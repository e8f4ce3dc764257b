"""Smoke test of experiments/bench_vqgan.py: the tiny config's float32 GAN step on 32x32
runs on the CPU devices, prints a table and a well-formed summary line last, and the
peak-FLOPs table and MFU read as documented; the comparison with taming-transformers
runs vqjax's side in a one-thread worker process without torch, and its ratios read as
documented."""
import math
import re

from experiments import bench_vqgan, bench_vqgan_peer

SUMMARY = re.compile(r"^summary: images_per_second=(\S+) mfu=(\S+) per_device_batch=1 "
                     r"devices=(\d+) device=cpu$")


def test_tiny_run_prints_table_and_summary_last(capsys):
  result = bench_vqgan.main(["--tiny", "--image_size=32", "--per_device_batch=1", "--steps=1",
                             "--peak_tflops=1", "--dtype=float32"])
  lines = capsys.readouterr().out.strip().splitlines()
  match = SUMMARY.match(lines[-1])
  assert match, lines[-1]
  images_per_second, mfu, devices = float(match[1]), float(match[2]), int(match[3])
  assert 0 < images_per_second < math.inf
  assert 0 < mfu < 1
  assert devices == result.devices
  assert lines[-3].split()[:2] == ["device", "devices"]
  assert result.flops_per_device > 0 and result.step_s > 0


def test_peak_lookup_and_mfu():
  assert bench_vqgan.peak_tflops("NVIDIA H100 80GB HBM3", "bfloat16") == 989.4
  assert bench_vqgan.peak_tflops("NVIDIA H100 80GB HBM3", "float32") == 66.9
  assert bench_vqgan.peak_tflops("NVIDIA H200", "bfloat16") == 989.4
  assert bench_vqgan.peak_tflops("TPU v5 lite", "bfloat16") == 197.0
  assert math.isnan(bench_vqgan.peak_tflops("TPU v4", "float32"))
  assert math.isnan(bench_vqgan.peak_tflops("cpu", "bfloat16"))
  # 8 images per 0.5 s on 2 devices, 100 TFLOP per step per device at a 1000 TFLOP/s peak.
  result = bench_vqgan.Result("NVIDIA H100 80GB HBM3", devices=2, dtype="bfloat16",
                              image_size=256, per_device_batch=8, step_s=0.5,
                              flops_per_device=100e12, peak_tflops=1000.0, compile_s=1.0)
  assert result.images_per_second == 32.0 and result.mfu == 0.2
  assert bench_vqgan.summary_line(result) == (
      "summary: images_per_second=32.000 mfu=0.2000 per_device_batch=8 devices=2 "
      "device=NVIDIA H100 80GB HBM3")


PEER_SUMMARY = re.compile(r"^summary: vs_taming_1thread=(\S+) vs_taming_2threads=(\S+) "
                          r"generator_vs_taming=(\S+)$")


def test_vs_taming_tiny_without_taming_prints_vqjax_times_and_summary_last(capsys):
  results = bench_vqgan.main(["--vs_taming", "--tiny", "--skip_taming", "--threads=1",
                              "--repetitions=1"])
  lines = capsys.readouterr().out.strip().splitlines()
  assert PEER_SUMMARY.match(lines[-1]), lines[-1]
  assert lines[-1] == "summary: vs_taming_1thread=nan vs_taming_2threads=nan " \
                      "generator_vs_taming=nan"
  times = results[1]["times"]
  assert set(times) == {"gan", "generator"}
  assert all(len(times[kind]["vqjax"]) == 1 and times[kind]["vqjax"][0] > 0
             for kind in times)
  assert "taming" not in times["gan"]


def test_peer_ratios_are_taming_minimum_over_vqjax_minimum():
  times = {"gan": {"vqjax": [2.0, 1.0], "taming": [3.0, 4.0]},
           "generator": {"vqjax": [1.0], "taming": [0.5]}}
  results = {1: {"times": times}, 2: {"times": {**times, "gan": {"vqjax": [1.0],
                                                                 "taming": [1.5]}}}}
  assert bench_vqgan_peer.ratio(times["gan"]) == 3.0
  assert bench_vqgan_peer.summary_line(results) == (
      "summary: vs_taming_1thread=3.000 vs_taming_2threads=1.500 generator_vs_taming=0.500")
  assert "taming/vqjax" in bench_vqgan_peer.table(results).splitlines()[0]
