"""Benchmark: the Sonnet-sized VQ-VAE train step, vqjax against the same model written with
dm-haiku's modules, as the Haiku / Sonnet VQ-VAE example writes it, in one process held to
the same threads, the two steps interleaved (A B A B ...) after warm-up.

    python -m experiments.bench_vqvae_haiku                          # threads 1 and 2
    python -m experiments.bench_vqvae_haiku --threads=1 --repetitions=9
    python -m experiments.bench_vqvae_haiku --tiny --repetitions=1   # smoke test

The model is cifar10_sonnet.py's (vqjax's run of the example): 32x32x3 images, batch 32,
two 4x4 stride-2 convolutions to 128 channels, a 3x3 convolution, 2 residual layers of 32,
a 1x1 convolution to D = 64, K = 512 codes kept by EMA (0.99), beta 0.25, then a 3x3
convolution, 2 residual layers and two 4x4 stride-2 transposed convolutions back to 3
channels; loss MSE / data variance + the quantizer's; Adam 3e-4. The Haiku side is built
from the same config with hk.Conv2D, hk.Conv2DTranspose (lax.conv_transpose) and
hk.nets.VectorQuantizerEMA, jitted with its state donated; both have the same parameter
count (checked). One step is forward, backward, Adam and the EMA codebook update, on fixed
random images (a step's time does not depend on the pixels, so no dataset is read).

Prints min and median seconds per step, the ratio of the minima (Haiku's / vqjax's; above 1
vqjax is faster) and a last line `summary: vs_haiku_1thread=… vs_haiku_2threads=…`.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics

from experiments import bench_quantizer_table, benchmarking
from experiments.bench_quantizer_table import CIFAR10_SHAPE

WARMUP_STEPS = 2


def anchor_config(tiny: bool):
  from experiments.configs import cifar10_sonnet
  return cifar10_sonnet.get_config(f"tiny={str(tiny).lower()}")


def haiku_forward(config):
  """images -> (reconstruction, quantizer loss): the example's VQ-VAE in Haiku modules, with
  the config's sizes (vqjax.models.layers' encoder and decoder layout)."""
  import haiku as hk
  import jax

  model = config.model
  hidden, steps = model.hidden_channels, model.downsample_factor.bit_length() - 1

  def residual_stack(x):
    for _ in range(model.num_residual_layers):
      h = hk.Conv2D(model.residual_channels, 3)(jax.nn.relu(x))
      x = x + hk.Conv2D(hidden, 1)(jax.nn.relu(h))
    return jax.nn.relu(x)

  def forward(images):
    x = images
    for _ in range(steps):
      x = jax.nn.relu(hk.Conv2D(hidden, 4, stride=2)(x))
    x = residual_stack(hk.Conv2D(hidden, 3)(x))
    z_e = hk.Conv2D(model.embedding_dim, 1)(x)
    quantizer = hk.nets.VectorQuantizerEMA(
        embedding_dim=model.embedding_dim, num_embeddings=model.quantizer.codebook_size,
        commitment_cost=model.quantizer.beta, decay=model.quantizer.ema_decay)
    out = quantizer(z_e, is_training=True)
    x = residual_stack(hk.Conv2D(hidden, 3)(out["quantize"]))
    for i in range(steps):
      last = i == steps - 1
      x = hk.Conv2DTranspose(CIFAR10_SHAPE[-1] if last else hidden, 4, stride=2)(x)
      x = x if last else jax.nn.relu(x)
    return x, out["loss"]
  return forward


def haiku_step(config, images):
  """() -> None: one train step of the Haiku model (forward, backward, Adam 3e-4, the EMA
  update), jitted with params, optimizer state and EMA state donated; and its parameter
  count (the EMA codebook is state on both sides, not a parameter)."""
  import haiku as hk
  import jax
  import jax.numpy as jnp
  import optax

  model = hk.transform_with_state(haiku_forward(config))
  images = jnp.asarray(images)
  params, state = model.init(jax.random.PRNGKey(0), images)
  optimizer = optax.adam(config.optimizer.learning_rate)
  variance = jnp.var(images)

  def loss_fn(params, state, images):
    (reconstruction, vq_loss), state = model.apply(params, state, None, images)
    return jnp.mean((reconstruction - images) ** 2) / variance + vq_loss, state

  def step(params, opt_state, state, images):  # images an argument, as vqjax's batch is
    (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state, images)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, state, loss

  step = jax.jit(step, donate_argnums=(0, 1, 2))
  holder = [params, optimizer.init(params), state]

  def run():
    params, opt_state, state, loss = step(*holder, images)
    holder[:] = [params, opt_state, state]
    jax.block_until_ready((holder, loss))
  return run, sum(leaf.size for leaf in jax.tree.leaves(params))


def worker(threads: int, *, tiny: bool, repetitions: int) -> dict:
  """{'threads', 'parameters', 'times': {'vqjax': [s...], 'haiku': [s...]}}."""
  config = anchor_config(tiny)
  images = bench_quantizer_table.random_images(config.data.batch_size)
  vqjax_run, vqjax_parameters = bench_quantizer_table.tokenizer_step(config, images)
  haiku_run, haiku_parameters = haiku_step(config, images)
  if vqjax_parameters != haiku_parameters:
    raise RuntimeError(f"the two models differ: vqjax has {vqjax_parameters} parameters, "
                       f"the Haiku model {haiku_parameters}")
  times = benchmarking.interleaved_times({"vqjax": vqjax_run, "haiku": haiku_run},
                                         repetitions, warmup=WARMUP_STEPS)
  return {"threads": threads, "tiny": tiny, "parameters": vqjax_parameters, "times": times}


def ratio(result: dict) -> float:
  """Haiku's fastest step over vqjax's: above 1, vqjax is faster."""
  return min(result["times"]["haiku"]) / min(result["times"]["vqjax"])


def table(results: dict[int, dict]) -> str:
  rows = [(str(threads), name, f"{min(times):.4f}", f"{statistics.median(times):.4f}",
           f"{ratio(result):.2f}" if name == "vqjax" else "")
          for threads, result in sorted(results.items())
          for name, times in result["times"].items()]
  return benchmarking.format_table(("threads", "framework", "min s", "median s",
                                    "haiku / vqjax"), rows)


def summary_line(results: dict[int, dict]) -> str:
  return "summary: " + " ".join(
      f"vs_haiku_{threads}thread{'s' if threads > 1 else ''}={ratio(result):.3f}"
      for threads, result in sorted(results.items()))


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  benchmarking.add_thread_arguments(
      parser, threads="1,2", threads_help="Thread counts, one worker process each, e.g. 1,2.",
      repetitions=7,
      repetitions_help="Timed steps of each framework, interleaved, after the warm-up.")
  parser.add_argument("--tiny", action="store_true", help="The test-sized model.")
  return parser.parse_args(argv)


def main(argv=None) -> dict[int, dict]:
  args = parse_args(argv)
  return benchmarking.compare_across_threads(
      args, module="experiments.bench_vqvae_haiku",
      worker_arguments=[f"--repetitions={args.repetitions}"] + ["--tiny"] * args.tiny,
      work=lambda threads: worker(threads, tiny=args.tiny, repetitions=args.repetitions),
      header=f"vqjax vs dm-haiku on the CPU ({os.cpu_count()} cores): the Sonnet-sized "
      f"VQ-VAE train step (cifar10_sonnet{':tiny' if args.tiny else ''}, batch 32), threads "
      f"{args.threads}, {args.repetitions} interleaved steps each after {WARMUP_STEPS} warm-up",
      describe=lambda result: f"{result['parameters']} parameters each; seconds per step "
      f"{json.dumps(result['times'])}",
      report=(table, summary_line))


if __name__ == "__main__":
  main()
