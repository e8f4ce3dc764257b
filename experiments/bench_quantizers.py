"""Benchmark: one VQ training step (forward, backward to the encoder output, EMA codebook
update) of vqjax against vector-quantize-pytorch and dm-haiku's VectorQuantizerEMA.

    python -m experiments.bench_quantizers            # all cases, 1.5 to 3.5 minutes on 2 cores
    python -m experiments.bench_quantizers --quick    # smallest case only (smoke test)

Every peer quantizes the same inputs z [N, dim] against the same initial codebook [K, dim]
and differentiates the same loss, commitment loss (beta 0.25) + mean(quantized * upstream),
where `upstream` is a fixed random array standing in for the decoder's gradient, so that
the straight-through path carries a gradient back to z. The EMA update (decay 0.99) is part
of the timed step. A step is counted as 2 N dim K flops (the distance matmul); its rate is
reported as a fraction of this machine's float32 matmul rate, measured in the same run on a
2048 x 2048 x 2048 product. Compilation and other warm-up are excluded; each time is the
best of several repetitions.
"""
from __future__ import annotations

import argparse
import math
import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from experiments import benchmarking
from experiments.benchmarking import best_time
from vqjax.quantizers import ema, vector_quantization

BETA = 0.25
DECAY = 0.99
MATMUL_SIZE = 2048
INSTALL_HINT = 'pip install -e ".[bench]"'


class Case(NamedTuple):
  count: int          # N, encoder outputs per step
  dim: int
  codebook_size: int  # K
  repeats: int        # timed vqjax steps
  peer_repeats: int   # timed steps of each peer (slow at the largest size)


CASES = (
    Case(8192, 64, 512, repeats=30, peer_repeats=10),
    Case(8192, 64, 8192, repeats=20, peer_repeats=5),
    Case(16384, 256, 16384, repeats=6, peer_repeats=2),
)
SUMMARY_CASE = (8192, 64, 8192)
SUMMARY_CASE_D256 = (16384, 256, 16384)


class Result(NamedTuple):
  case: Case
  vqjax_s: float
  vector_quantize_pytorch_s: float  # nan when the peer was skipped or is missing
  haiku_s: float
  matmul_flops_per_s: float

  @property
  def step_flops(self) -> float:
    return 2.0 * self.case.count * self.case.dim * self.case.codebook_size

  @property
  def vqjax_flops_per_s(self) -> float:
    return self.step_flops / self.vqjax_s

  @property
  def matmul_fraction(self) -> float:
    return self.vqjax_flops_per_s / self.matmul_flops_per_s

  @property
  def speedup_vs_vector_quantize_pytorch(self) -> float:
    return self.vector_quantize_pytorch_s / self.vqjax_s

  @property
  def speedup_vs_haiku(self) -> float:
    return self.haiku_s / self.vqjax_s


def benchmark_inputs(case: Case, seed: int = 0):
  """(z [N, dim], upstream [N, dim], codebook [K, dim]) as float32 numpy arrays.

  The codebook is K rows of a second batch drawn like z, so codes are used about evenly,
  as after k-means initialization.
  """
  rng = np.random.default_rng(seed)
  shape = (case.count, case.dim)
  z = rng.standard_normal(shape, dtype=np.float32)
  upstream = rng.standard_normal(shape, dtype=np.float32)
  codebook = rng.standard_normal((case.codebook_size, case.dim), dtype=np.float32)
  return z, upstream, codebook


def matmul_flops_per_s(repeats: int) -> float:
  """This machine's float32 matmul rate: a jitted 2048 x 2048 x 2048 product."""
  rng = np.random.default_rng(1)
  shape = (MATMUL_SIZE, MATMUL_SIZE)
  left = jnp.asarray(rng.standard_normal(shape, dtype=np.float32))
  right = jnp.asarray(rng.standard_normal(shape, dtype=np.float32))
  product = jax.jit(jnp.matmul)
  seconds = best_time(lambda: product(left, right).block_until_ready(), repeats)
  return 2.0 * MATMUL_SIZE ** 3 / seconds


def vqjax_step(state: ema.EMACodebookState, z, upstream):
  """(grad_z, new_state, loss): straight-through VQ, its gradient to z, one EMA update."""
  def step_loss(z):
    out = vector_quantization.quantize(z, state.codebook, beta=BETA)
    return out.commitment_loss + jnp.mean(out.quantized * upstream), out.indices

  (loss, indices), grad_z = jax.value_and_grad(step_loss, has_aux=True)(z)
  new_state = ema.update(state, z, indices, decay=DECAY)
  return grad_z, new_state, loss


def time_vqjax(case: Case, repeats: int) -> float:
  z, upstream, codebook = (jnp.asarray(x) for x in benchmark_inputs(case))
  step = jax.jit(vqjax_step, donate_argnums=0)
  # ema.init shares one buffer between codebook and embed_sum; donation needs distinct ones.
  state = jax.tree.map(jnp.copy, ema.init(codebook))

  def run_step():
    nonlocal state
    grad_z, state, loss = step(state, z, upstream)
    jax.block_until_ready((grad_z, state, loss))

  return best_time(run_step, repeats)


def time_vector_quantize_pytorch(case: Case, repeats: int) -> float:
  """One training step of vector_quantize_pytorch.VectorQuantize with its EMA codebook."""
  import torch
  from vector_quantize_pytorch import VectorQuantize

  torch.set_num_threads(os.cpu_count() or 1)
  z, upstream, codebook = (torch.from_numpy(x) for x in benchmark_inputs(case))
  # rotation_trick=False: the straight-through estimator, as in the other two.
  quantizer = VectorQuantize(dim=case.dim, codebook_size=case.codebook_size, decay=DECAY,
                             commitment_weight=BETA, rotation_trick=False)
  with torch.no_grad():
    quantizer._codebook.embed.copy_(codebook[None])
    quantizer._codebook.embed_avg.copy_(codebook[None])
    quantizer._codebook.cluster_size.fill_(1.0)
  quantizer.train()
  inputs = z[None].clone().requires_grad_(True)  # [1, N, dim]: one sequence of N vectors
  upstream = upstream[None]

  def run_step():
    inputs.grad = None
    quantized, _, commitment_loss = quantizer(inputs)
    loss = commitment_loss + torch.mean(quantized * upstream)
    loss.backward()

  return best_time(run_step, repeats, warmup=1)  # nothing to compile


def time_haiku(case: Case, repeats: int) -> float:
  """One training step of haiku.nets.VectorQuantizerEMA, jitted, state donated."""
  import haiku as hk

  def forward(z):
    quantizer = hk.nets.VectorQuantizerEMA(embedding_dim=case.dim,
                                           num_embeddings=case.codebook_size,
                                           commitment_cost=BETA, decay=DECAY)
    return quantizer(z, is_training=True)

  model = hk.transform_with_state(forward)
  z, upstream, codebook = (jnp.asarray(x) for x in benchmark_inputs(case))
  params, state = model.init(jax.random.PRNGKey(0), z)
  state = {name: ({**values, "embeddings": codebook.T} if "embeddings" in values else values)
           for name, values in state.items()}

  def step(state, z, upstream):
    def step_loss(z):
      out, new_state = model.apply(params, state, None, z)
      return out["loss"] + jnp.mean(out["quantize"] * upstream), new_state

    (loss, new_state), grad_z = jax.value_and_grad(step_loss, has_aux=True)(z)
    return grad_z, new_state, loss

  step = jax.jit(step, donate_argnums=0)

  def run_step():
    nonlocal state
    grad_z, state, loss = step(state, z, upstream)
    jax.block_until_ready((grad_z, state, loss))

  return best_time(run_step, repeats)


def time_peer(name: str, timer, case: Case, repeats: int, skip: bool) -> float:
  """Seconds per step of a peer library, or nan (with a message) if skipped or missing."""
  if skip:
    return math.nan
  try:
    return timer(case, repeats)
  except ImportError as error:
    print(f"{name} is not installed ({error}); reporting n/a. Install the benchmark peers "
          f"with: {INSTALL_HINT}")
    return math.nan


def run_case(case: Case, args) -> Result:
  """Times the three libraries on one case; the matmul rate is filled in by `main`."""
  repeats = args.repeats or case.repeats
  peer_repeats = args.repeats or case.peer_repeats
  return Result(
      case,
      vqjax_s=time_vqjax(case, repeats),
      haiku_s=time_peer("dm-haiku", time_haiku, case, peer_repeats, args.skip_haiku),
      vector_quantize_pytorch_s=time_peer("vector-quantize-pytorch",
                                          time_vector_quantize_pytorch, case,
                                          peer_repeats, args.skip_torch),
      matmul_flops_per_s=math.nan)


def format_number(value: float, digits: int) -> str:
  return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


TABLE_COLUMNS = ("N", "dim", "K", "vqjax ms", "vqp ms", "haiku ms", "vqjax GFLOP/s",
                 "matmul_fraction", "x vqp", "x haiku")


def table_row(result: Result) -> tuple[str, ...]:
  case = result.case
  return (str(case.count), str(case.dim), str(case.codebook_size),
          format_number(1e3 * result.vqjax_s, 2),
          format_number(1e3 * result.vector_quantize_pytorch_s, 2),
          format_number(1e3 * result.haiku_s, 2),
          format_number(1e-9 * result.vqjax_flops_per_s, 1),
          format_number(result.matmul_fraction, 3),
          format_number(result.speedup_vs_vector_quantize_pytorch, 2),
          format_number(result.speedup_vs_haiku, 2))


def format_table(results) -> str:
  return benchmarking.format_table(TABLE_COLUMNS, [table_row(result) for result in results])


def summary_line(results) -> str:
  """The last line of the output; a case that was not run gives nan."""
  by_shape = {(r.case.count, r.case.dim, r.case.codebook_size): r for r in results}
  reference, d256 = by_shape.get(SUMMARY_CASE), by_shape.get(SUMMARY_CASE_D256)

  def value(result, field: str) -> str:
    return "nan" if result is None else f"{getattr(result, field):.3f}"

  return (f"summary: vs_vector_quantize_pytorch="
          f"{value(reference, 'speedup_vs_vector_quantize_pytorch')} "
          f"vs_haiku={value(reference, 'speedup_vs_haiku')} "
          f"matmul_fraction={value(reference, 'matmul_fraction')} "
          f"matmul_fraction_d256={value(d256, 'matmul_fraction')}")


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true",
                      help="only the smallest case, few repetitions (smoke test)")
  parser.add_argument("--repeats", type=int, default=None,
                      help="timed repetitions per measurement, overriding the defaults")
  parser.add_argument("--skip-torch", action="store_true",
                      help="do not run vector-quantize-pytorch")
  parser.add_argument("--skip-haiku", action="store_true", help="do not run dm-haiku")
  args = parser.parse_args(argv)
  if args.repeats is not None and args.repeats < 1:
    parser.error(f"--repeats is {args.repeats}; it must be at least 1")
  if args.quick and args.repeats is None:
    args.repeats = 3
  return args


def main(argv=None) -> list[Result]:
  args = parse_args(argv)
  cases = CASES[:1] if args.quick else CASES
  matmul_repeats = args.repeats or 10
  print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} cores")
  # The machine's matmul rate is the best of measurements spread over the run, so that a
  # busy moment of a shared machine does not lower it.
  matmul_rates = [matmul_flops_per_s(matmul_repeats)]
  results = []
  for case in cases:
    results.append(run_case(case, args))
    matmul_rates.append(matmul_flops_per_s(matmul_repeats))
    print(f"measured (N, dim, K) = ({case.count}, {case.dim}, {case.codebook_size})",
          flush=True)
  matmul_rate = max(matmul_rates)
  results = [result._replace(matmul_flops_per_s=matmul_rate) for result in results]
  print(f"float32 matmul {MATMUL_SIZE}^3: {1e-9 * matmul_rate:.1f} GFLOP/s "
        f"(best of {len(matmul_rates)} measurements of {matmul_repeats} products)")
  print(format_table(results))
  print(summary_line(results))
  return results


if __name__ == "__main__":
  main()
