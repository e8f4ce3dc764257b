"""Benchmark: images/s and model FLOPs utilization (MFU) of the VQGAN train step of
experiments/configs/vqgan_imagenet256_f16.py (taming's f16 ImageNet model) on random images;
with --vs_taming, vqjax's step against taming-transformers' on the CPU
(experiments/bench_vqgan_peer.py documents that comparison).

    python -m experiments.bench_vqgan --per_device_batch=8     # GPU/TPU, bfloat16
    python -m experiments.bench_vqgan --tiny --image_size=32 --per_device_batch=1 --steps=1
    python -m experiments.bench_vqgan --vs_taming              # CPU, pip install -e .[bench]

The step is built as the training loop builds it, without the dataset (ImageNet cannot be
downloaded): the config's model, GAN parts and optimizer, a fresh state and
gan_experiment.train_step, with the discriminator on from step 0 so the whole GAN step is
timed. One batch of uniform [-1, 1] images, [local devices, per-device batch, S, S, 3],
is placed on the devices once and fed to every step.

The training loop's pmapped step (LPIPS weights an argument placed once) is compiled
ahead of time from its .mapped and .constant; XLA's cost analysis of that executable gives
the FLOPs per step per device, and the same executable is timed: 2 untimed warm-up steps,
then `--steps` steps dispatched back to back and blocked on at the end; the time per step
is their mean. The FLOPs are XLA's count for the whole step: generator forward and
backward (with the adaptive weight's gradients at the last layer), LPIPS forward and
backward, discriminator forward and backward on real and reconstructed images, and the
optimizer updates; for the step's lax.conds XLA counts the costlier branch.

MFU = FLOPs per step per device / seconds per step / peak dense FLOP/s per device. The
peak is --peak_tflops, or looked up from the device kind in PEAK_TFLOPS (bfloat16, and
float32 without TF32 where known); for an unknown device MFU is nan (printed n/a). XLA may
run float32 matmuls in TF32 on GPUs, so a float32 MFU against the non-TF32 peak can
overstate.
"""
from __future__ import annotations

import argparse
import math
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp

from experiments import bench_vqgan_peer, benchmarking
from experiments.configs import vqgan_imagenet256_f16
from vqjax.train import optimizer as optimizer_lib, parallel
from vqjax.runner import build, gan_experiment

WARMUP_STEPS = 2
DTYPES = ("bfloat16", "float32")


class Peak(NamedTuple):
  kinds: tuple[str, ...]  # lower-case substrings of jax.Device.device_kind
  bfloat16: float         # dense TFLOP/s per device
  float32: float | None   # dense, without TF32; None: unknown


# Checked in order, so the more specific kinds come first.
PEAK_TFLOPS = (
    Peak(("h100 pcie",), bfloat16=756.0, float32=51.2),
    Peak(("h100",), bfloat16=989.4, float32=66.9),
    Peak(("h200",), bfloat16=989.4, float32=66.9),
    Peak(("a100",), bfloat16=312.0, float32=19.5),
    Peak(("tpu v4",), bfloat16=275.0, float32=None),
    Peak(("tpu v5 lite", "tpu v5e"), bfloat16=197.0, float32=None),
    Peak(("tpu v5p", "tpu v5"), bfloat16=459.0, float32=None),
)


def peak_tflops(device_kind: str, dtype: str) -> float:
  """Dense TFLOP/s per device of this kind at dtype; nan when unknown."""
  kind = device_kind.lower()
  for peak in PEAK_TFLOPS:
    if any(name in kind for name in peak.kinds):
      value = getattr(peak, dtype)
      return math.nan if value is None else value
  return math.nan


class Result(NamedTuple):
  device_kind: str
  devices: int
  dtype: str
  image_size: int
  per_device_batch: int
  step_s: float           # mean seconds per step
  flops_per_device: float  # XLA-counted FLOPs of one step on one device
  peak_tflops: float      # per device; nan when unknown
  compile_s: float

  @property
  def images_per_second(self) -> float:
    return self.per_device_batch * self.devices / self.step_s

  @property
  def tflops_per_device(self) -> float:
    return self.flops_per_device / self.step_s / 1e12

  @property
  def mfu(self) -> float:
    return self.tflops_per_device / self.peak_tflops


def make_config(*, image_size: int, per_device_batch: int, dtype: str, tiny: bool):
  """The f16 ImageNet config (tiny: its test-sized shrink) with the GAN on from step 0."""
  if dtype not in DTYPES:
    raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(map(repr, DTYPES))}")
  config = vqgan_imagenet256_f16.get_config("tiny" if tiny else None)
  config.data.update(image_size=image_size, batch_size=per_device_batch * jax.device_count())
  config.model.dtype = dtype
  config.discriminator.dtype = dtype
  config.gan.discriminator_start = 0
  return config


def compiled_step(config):
  """(a compiled (state, batch) -> (state, metrics) with the state donated, a fresh state,
  the batch of random images on the devices)."""
  size = config.data.image_size
  model = build.build_model(config.model, axis_name=parallel.AXIS_NAME)
  parts = gan_experiment.prepare_gan(config)
  optimizer = optimizer_lib.optimizer_from_config(config.optimizer,
                                                  total_steps=config.train.num_steps)
  state = gan_experiment.init_state(model, optimizer, parts, seed=config.seed,
                                    image_shape=(size, size, 3))()
  step = gan_experiment.train_step(model, optimizer, parts)
  local_devices = jax.local_device_count()
  images = jax.random.uniform(
      jax.random.PRNGKey(1),
      (local_devices, config.data.batch_size // jax.device_count(), size, size, 3),
      jnp.float32, minval=-1.0, maxval=1.0)
  batch = {"image": jax.device_put(images, parallel.split_sharding())}
  # The loop's pmapped program (state donated), compiled ahead of time.
  executable = step.mapped.lower(state, batch, step.constant).compile()
  compiled = lambda state, batch: executable(state, batch, step.constant)
  compiled.cost_analysis = executable.cost_analysis
  return compiled, state, batch


def step_flops(compiled) -> float:
  """FLOPs per device of a compiled pmapped step (older JAX returns a list of dicts)."""
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0]
  return float(analysis["flops"])


def time_steps(compiled, state, batch, steps: int) -> float:
  """Mean seconds per step of `steps` steps after WARMUP_STEPS, blocking only at the end."""
  for _ in range(WARMUP_STEPS):
    state, metrics = compiled(state, batch)
  jax.block_until_ready(metrics)
  start = time.perf_counter()
  for _ in range(steps):
    state, metrics = compiled(state, batch)
  jax.block_until_ready(metrics)
  return (time.perf_counter() - start) / steps


def run(*, image_size: int = 256, per_device_batch: int = 8, steps: int = 10,
        dtype: str = "bfloat16", tiny: bool = False, peak: float | None = None) -> Result:
  """Builds, compiles and times the step; peak: TFLOP/s per device (None: look it up)."""
  if steps < 1 or per_device_batch < 1:
    raise ValueError(f"steps is {steps} and per_device_batch {per_device_batch}; both must be "
                     ">= 1")
  config = make_config(image_size=image_size, per_device_batch=per_device_batch, dtype=dtype,
                       tiny=tiny)
  start = time.perf_counter()
  compiled, state, batch = compiled_step(config)
  compile_s = time.perf_counter() - start
  device_kind = jax.devices()[0].device_kind
  return Result(device_kind, jax.device_count(), dtype, image_size, per_device_batch,
                step_s=time_steps(compiled, state, batch, steps),
                flops_per_device=step_flops(compiled),
                peak_tflops=peak_tflops(device_kind, dtype) if peak is None else peak,
                compile_s=compile_s)


TABLE_COLUMNS = ("device", "devices", "dtype", "image", "batch/device", "ms/step", "images/s",
                 "GFLOP/step/device", "TFLOP/s/device", "peak TFLOP/s", "MFU", "compile s")


def _or_na(value: float, spec: str) -> str:
  return "n/a" if math.isnan(value) else format(value, spec)


def table_row(result: Result) -> tuple[str, ...]:
  return (result.device_kind, str(result.devices), result.dtype, str(result.image_size),
          str(result.per_device_batch), f"{1e3 * result.step_s:.1f}",
          f"{result.images_per_second:.2f}", f"{result.flops_per_device / 1e9:.1f}",
          f"{result.tflops_per_device:.3f}", _or_na(result.peak_tflops, ".1f"),
          _or_na(result.mfu, ".4f"), f"{result.compile_s:.1f}")


def summary_line(result: Result) -> str:
  """The last line of the output; mfu is nan when the peak is unknown."""
  return (f"summary: images_per_second={result.images_per_second:.3f} mfu={result.mfu:.4f} "
          f"per_device_batch={result.per_device_batch} devices={result.devices} "
          f"device={result.device_kind}")


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--image_size", type=int, default=256)
  parser.add_argument("--per_device_batch", type=int, default=8)
  parser.add_argument("--steps", type=int, default=10, help="timed steps")
  parser.add_argument("--dtype", choices=DTYPES, default="bfloat16",
                      help="compute dtype of the generator and the discriminator")
  parser.add_argument("--tiny", action="store_true",
                      help="the config's test-sized model (a CPU smoke test)")
  parser.add_argument("--peak_tflops", type=float, default=None,
                      help="peak dense TFLOP/s per device for the MFU (default: looked up "
                           "from the device kind)")
  bench_vqgan_peer.add_arguments(parser)
  return parser.parse_args(argv)


def main(argv=None):
  """The f16 step's Result; with --vs_taming the comparison's {threads: timings}."""
  args = parse_args(argv)
  if args.vs_taming or args.worker_threads:
    return bench_vqgan_peer.main(args)
  print(f"jax {jax.__version__} on {jax.device_count()} x {jax.devices()[0].device_kind}; "
        f"vqgan_imagenet256_f16{' (tiny)' if args.tiny else ''}, {args.dtype}, "
        f"{args.image_size}x{args.image_size}, {args.per_device_batch} images per device",
        flush=True)
  result = run(image_size=args.image_size, per_device_batch=args.per_device_batch,
               steps=args.steps, dtype=args.dtype, tiny=args.tiny, peak=args.peak_tflops)
  print(benchmarking.format_table(TABLE_COLUMNS, [table_row(result)]))
  print(summary_line(result))
  return result


if __name__ == "__main__":
  main()
