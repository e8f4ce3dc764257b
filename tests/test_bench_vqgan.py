"""Smoke test of experiments/bench_vqgan.py: the tiny config's float32 GAN step on 32x32
runs on the CPU devices, prints a table and a well-formed summary line last, and the
peak-FLOPs table and MFU read as documented."""
import math
import re

from experiments import bench_vqgan

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
