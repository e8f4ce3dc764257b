"""vqjax's VQGAN train step against taming-transformers' on the CPU, in one run
(python -m experiments.bench_vqgan --vs_taming; taming needs pip install -e .[bench]).

The same architecture on both sides: 64x64x3 images, width 64, multipliers 1,2,2,4, two
residual blocks, attention at 8x8, z and codebook dimension 64, K = 1024; a PatchGAN of
64 channels and 3 layers with batch norm; batch 4, Adam (0.5, 0.9), L1 + LPIPS + hinge
loss with the adaptive weight, the discriminator on from step 0 (17,292,547 generator and
2,765,633 discriminator parameters on both sides). Two steps are timed:

    gan        generator update (+ adaptive weight, LPIPS, GAN term) + discriminator update
    generator  L1 reconstruction + codebook loss only (vqjax's step before
               discriminator_start with perceptual_weight 0)

Each thread count runs in its own process, where XLA (XLA_FLAGS, and the process's CPU
affinity, which sizes XLA's thread pool) and torch (set_num_threads) are held to it. In
that process both frameworks build and warm up (2 untimed steps each), then alternate
A B A B for --repetitions steps each, every step blocked on. Reported: min and median
seconds, and the ratio of the minima, taming / vqjax (> 1: vqjax is faster); the minimum
is the step least disturbed by other processes on a shared machine. The last line:

    summary: vs_taming_1thread=<gan> vs_taming_2threads=<gan> generator_vs_taming=<1 thread>

--tiny shrinks both models (vqgan_imagenet256_f16:tiny at 32x32), --skip_taming times
vqjax alone (ratios nan): the smoke test, which needs no torch.
"""
from __future__ import annotations

import json
import os
import statistics

from experiments import benchmarking

KINDS = ("gan", "generator")
WARMUP_STEPS = 2


def add_arguments(parser) -> None:
  parser.add_argument("--vs_taming", action="store_true",
                      help="time vqjax against taming-transformers on the CPU")
  benchmarking.add_thread_arguments(
      parser, threads="1,2",
      threads_help="thread counts to compare at, one process each",
      repetitions=5,
      repetitions_help="timed steps per framework and kind, interleaved")
  parser.add_argument("--skip_taming", action="store_true",
                      help="time vqjax alone (no torch needed)")


def make_config(*, tiny: bool):
  """The comparison's VQGAN config (tiny: vqgan_imagenet256_f16's test-sized shrink)."""
  from experiments.configs import vqgan_imagenet256_f16
  config = vqgan_imagenet256_f16.get_config("tiny" if tiny else None)
  config.data.update(image_size=32 if tiny else 64, batch_size=4)
  if not tiny:
    config.model.update(channels=64, channel_multipliers=(1, 2, 2, 4), num_res_blocks=2,
                        attention_resolutions=(8,), z_channels=64, embedding_dim=64)
    config.model.quantizer.update(codebook_size=1024, dim=64)
    config.discriminator.update(channels=64, num_layers=3, norm="batch")
  config.model.dtype = config.discriminator.dtype = "float32"
  config.gan.update(discriminator_start=0, discriminator_weight=0.8, perceptual_weight=1.0)
  return config


def taming_setup(config):
  from experiments import bench_vqgan_taming
  model = config.model
  return bench_vqgan_taming.TamingSetup(
      image_size=config.data.image_size, channels=model.channels,
      channel_multipliers=tuple(model.channel_multipliers),
      num_res_blocks=model.num_res_blocks,
      attention_resolutions=tuple(model.attention_resolutions), z_channels=model.z_channels,
      codebook_size=model.quantizer.codebook_size, embedding_dim=model.embedding_dim,
      disc_channels=config.discriminator.channels, disc_layers=config.discriminator.num_layers,
      discriminator_weight=config.gan.discriminator_weight,
      perceptual_weight=config.gan.perceptual_weight,
      learning_rate=config.optimizer.learning_rate, batch_size=config.data.batch_size)


def vqjax_steps(config) -> dict:
  """{kind: () -> None}: one update of the compiled step on a fixed random batch, blocked
  on; 'parameters': () -> (generator, discriminator) parameter counts."""
  import jax
  import numpy as np
  from vqjax.runner import build, gan_experiment
  from vqjax.train import optimizer as optimizer_lib, parallel

  size = config.data.image_size
  model = build.build_model(config.model, axis_name=parallel.AXIS_NAME)
  optimizer = optimizer_lib.optimizer_from_config(config.optimizer,
                                                  total_steps=config.train.num_steps)
  images = np.random.default_rng(1).uniform(-1, 1, (1, config.data.batch_size, size, size, 3))
  batch = {"image": jax.device_put(images.astype(np.float32))}
  steps, counts = {}, None
  for kind in KINDS:
    if kind == "generator":  # the program before discriminator_start, pixel loss only
      config = config.copy_and_resolve_references()
      config.gan.update(perceptual_weight=0.0, discriminator_start=10**9)
    parts = gan_experiment.prepare_gan(config)
    state = gan_experiment.init_state(model, optimizer, parts, seed=0,
                                      image_shape=(size, size, 3))()
    counts = counts or tuple(sum(x.size for x in jax.tree.leaves(params))
                             for params in (state.params, state.disc_params))
    step = gan_experiment.train_step(model, optimizer, parts)
    mapped = step.mapped if kind == "gan" else step.mapped_before_start
    executable = mapped.lower(state, batch, step.constant).compile()
    steps[kind] = _stepper(executable, state, batch, step.constant)
  steps["parameters"] = lambda: counts
  return steps


def _stepper(executable, state, batch, constant):
  import jax
  holder = [state]

  def run():
    holder[0], metrics = executable(holder[0], batch, constant)
    jax.block_until_ready((holder[0], metrics))
  return run


def worker(threads: int, *, tiny: bool, repetitions: int, skip_taming: bool) -> dict:
  """In a process held to `threads`: {kind: {'vqjax': [s...], 'taming': [s...]}}."""
  config = make_config(tiny=tiny)
  frameworks = {"vqjax": vqjax_steps(config)}
  if not skip_taming:
    from experiments import bench_vqgan_taming
    frameworks["taming"] = bench_vqgan_taming.build_steps(taming_setup(config),
                                                          threads=threads)
  parameters = {name: steps["parameters"]() for name, steps in frameworks.items()}
  times = {kind: benchmarking.interleaved_times(
      {name: steps[kind] for name, steps in frameworks.items()}, repetitions,
      warmup=WARMUP_STEPS) for kind in KINDS}
  return {"threads": threads, "parameters": parameters, "times": times}


def ratio(times: dict) -> float:
  """taming's minimum / vqjax's (> 1: vqjax is faster); nan without taming."""
  if "taming" not in times:
    return float("nan")
  return min(times["taming"]) / min(times["vqjax"])


def summary_line(results: dict[int, dict]) -> str:
  gan = lambda threads: (ratio(results[threads]["times"]["gan"]) if threads in results
                         else float("nan"))
  generator = (ratio(results[1]["times"]["generator"]) if 1 in results else float("nan"))
  return (f"summary: vs_taming_1thread={gan(1):.3f} vs_taming_2threads={gan(2):.3f} "
          f"generator_vs_taming={generator:.3f}")


def table(results: dict[int, dict]) -> str:
  rows = []
  for threads, result in sorted(results.items()):
    for kind in KINDS:
      for name, times in result["times"][kind].items():
        rows.append((kind, str(threads), name, f"{min(times):.3f}",
                     f"{statistics.median(times):.3f}", str(len(times)),
                     f"{ratio(result['times'][kind]):.3f}" if name == "taming" else ""))
  return benchmarking.format_table(
      ("step", "threads", "framework", "min s", "median s", "steps", "taming/vqjax"), rows)


def main(args) -> dict[int, dict]:
  results = benchmarking.compare_across_threads(
      args, module="experiments.bench_vqgan",
      worker_arguments=[f"--repetitions={args.repetitions}"] + ["--tiny"] * args.tiny
      + ["--skip_taming"] * args.skip_taming,
      work=lambda threads: worker(threads, tiny=args.tiny, repetitions=args.repetitions,
                                  skip_taming=args.skip_taming),
      header=f"vqjax vs taming-transformers on the CPU ({os.cpu_count()} cores), "
      f"{'tiny' if args.tiny else '64x64'} VQGAN, batch 4, threads {args.threads}, "
      f"{args.repetitions} interleaved steps each after {WARMUP_STEPS} warm-up",
      describe=lambda result: f"parameters (generator, discriminator) "
      f"{result['parameters']}; seconds per step {json.dumps(result['times'])}",
      report=(table, summary_line))
  return results
