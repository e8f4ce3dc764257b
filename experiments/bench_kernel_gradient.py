r"""The kernel gradient of a 3x3 convolution on XLA:CPU: XLA's default (YNNPACK) against
vqjax's Eigen form (vqjax.models.eigen_kernel_gradient) and torch's, in one run.

The shapes are the 3x3 layers of the VQGAN comparison in bench_vqgan --vs_taming (batch
4; 64x64 by 64 channels, 32x32 and 16x16 by 128, 8x8 by 256). Each thread count runs in
its own process, where XLA and torch are held to it; there each shape's three kernel
gradients warm up (2 untimed calls each), then alternate A B C A B C for --repetitions
calls each, every call blocked on. Reported: the minimum ms and its GFLOP/s per side, and
the ratios xla / eigen and torch / eigen (> 1: the Eigen form is faster). The last line
holds their geometric means over the shapes:

    summary: eigen_vs_xla_1thread=<r> eigen_vs_torch_1thread=<r> eigen_vs_xla_2threads=<r> eigen_vs_torch_2threads=<r>

  python -m experiments.bench_kernel_gradient                 # threads 1,2, 9 repetitions
  python -m experiments.bench_kernel_gradient --skip_torch    # no torch needed

Which side wins depends on the CPU (the module docstring of eigen_kernel_gradient): this
benchmark times the Eigen form wherever it runs, whatever the drop-in would choose there.
"""
from __future__ import annotations

import argparse
import math
import sys

from experiments import benchmarking

# (batch, height, width, input channels, output channels) of the 3x3 layers
SHAPES = ((4, 64, 64, 64, 64), (4, 32, 32, 128, 128), (4, 16, 16, 128, 128),
          (4, 8, 8, 256, 256))
SIDES = ("xla", "eigen", "torch")
_SAME = ((1, 1), (1, 1))


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  benchmarking.add_thread_arguments(
      parser, threads="1,2", threads_help="thread counts, one process each", repetitions=9,
      repetitions_help="timed calls per side and shape, interleaved")
  parser.add_argument("--skip_torch", action="store_true", help="time the XLA sides alone")
  parser.add_argument("--shapes", default="",
                      help="batch x height x width x in x out, comma-separated "
                           "(e.g. 2x8x8x16x16); default: the VQGAN comparison's layers")
  return parser.parse_args(argv)


def shapes_from(text: str) -> tuple[tuple[int, ...], ...]:
  if not text:
    return SHAPES
  shapes = tuple(tuple(int(size) for size in item.split("x")) for item in text.split(","))
  if any(len(shape) != 5 or min(shape) < 1 for shape in shapes):
    raise SystemExit(f"--shapes={text}: give batch x height x width x in x out, each >= 1, "
                     "e.g. --shapes=4x64x64x64x64,4x8x8x256x256")
  return shapes


def flops(shape) -> int:
  batch, height, width, channels, features = shape
  return 2 * batch * height * width * 9 * channels * features


def kernel_gradients(shape, threads: int, with_torch: bool) -> dict:
  """{side: () -> None}: the kernel gradient of one 3x3 'SAME' convolution, blocked on."""
  import jax
  import numpy as np
  from vqjax.models import eigen_kernel_gradient
  batch, height, width, channels, features = shape
  rng = np.random.default_rng(0)
  x = jax.numpy.asarray(rng.normal(size=(batch, height, width, channels)), jax.numpy.float32)
  dy = jax.numpy.asarray(rng.normal(size=(batch, height, width, features)), jax.numpy.float32)
  kernel = jax.numpy.zeros((3, 3, channels, features), jax.numpy.float32)

  def xla(x, dy):
    convolve = lambda k: jax.lax.conv_general_dilated(
        x, k, (1, 1), _SAME, dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return jax.vjp(convolve, kernel)[1](dy)[0]

  compiled = {"xla": jax.jit(xla), "eigen": jax.jit(
      lambda x, dy: eigen_kernel_gradient.kernel_gradient(x, dy, (3, 3), _SAME))}
  sides = {name: (lambda f=f: f(x, dy).block_until_ready()) for name, f in compiled.items()}
  reference = np.asarray(compiled["xla"](x, dy))
  np.testing.assert_allclose(compiled["eigen"](x, dy), reference, rtol=1e-3,
                             atol=1e-3 * float(np.abs(reference).max()))
  if with_torch:
    import torch
    torch.set_num_threads(threads)
    x_torch = torch.from_numpy(np.asarray(x)).permute(0, 3, 1, 2).contiguous()
    dy_torch = torch.from_numpy(np.asarray(dy)).permute(0, 3, 1, 2).contiguous()
    weight = torch.zeros(features, channels, 3, 3)
    sides["torch"] = lambda: torch.ops.aten.convolution_backward(
        dy_torch, x_torch, weight, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1,
        [False, True, False])
  return sides


def worker(threads: int, args) -> dict:
  times = {}
  for shape in shapes_from(args.shapes):
    sides = kernel_gradients(shape, threads, with_torch=not args.skip_torch)
    times["x".join(map(str, shape))] = benchmarking.interleaved_times(sides, args.repetitions)
  return {"threads": threads, "times": times}


def ratio(times: dict, side: str) -> float:
  if side not in times:
    return float("nan")
  return min(times[side]) / min(times["eigen"])


def table(results: dict[int, dict]) -> str:
  rows = []
  for threads, result in sorted(results.items()):
    for shape_name, times in result["times"].items():
      gflop = flops(tuple(int(size) for size in shape_name.split("x"))) / 1e9
      cells = [f"{min(times[side]) * 1e3:.2f} ({gflop / min(times[side]):.0f})"
               if side in times else "-" for side in SIDES]
      rows.append((str(threads), shape_name, *cells, f"{ratio(times, 'xla'):.3f}",
                   f"{ratio(times, 'torch'):.3f}"))
  return benchmarking.format_table(
      ("threads", "shape", "xla ms (GFLOP/s)", "eigen ms", "torch ms", "xla/eigen",
       "torch/eigen"), rows)


def geometric_mean(values) -> float:
  values = [value for value in values if not math.isnan(value)]
  return math.exp(sum(map(math.log, values)) / len(values)) if values else float("nan")


def summary_line(results: dict[int, dict]) -> str:
  parts = []
  for threads in (1, 2):
    label = "1thread" if threads == 1 else "2threads"
    for side in ("xla", "torch"):
      shapes = results[threads]["times"].values() if threads in results else ()
      parts.append(f"eigen_vs_{side}_{label}="
                   f"{geometric_mean(ratio(times, side) for times in shapes):.3f}")
  return "summary: " + " ".join(parts)


def main(argv=None) -> dict[int, dict]:
  args = parse_args(argv)
  shapes = shapes_from(args.shapes)
  forwarded = [f"--repetitions={args.repetitions}", f"--shapes={args.shapes}"]
  forwarded += ["--skip_torch"] * args.skip_torch
  return benchmarking.compare_across_threads(
      args, module="experiments.bench_kernel_gradient", worker_arguments=forwarded,
      work=lambda threads: worker(threads, args),
      header=(f"3x3 kernel gradients on the CPU, {len(shapes)} shapes, threads "
              f"{args.threads}, {args.repetitions} interleaved calls each after 2 warm-up"),
      describe=lambda result: f"{len(result['times'])} shapes timed",
      report=(table, summary_line))


if __name__ == "__main__":
  main(sys.argv[1:])
