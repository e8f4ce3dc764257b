"""Benchmark: tokens/s of sampling a TransformerPrior with the key-value cache against
recomputing the whole sequence every step, both on vqjax.sampling's one decode loop (the
cached step is sampling.make_sampler's; the full one is sampling.recompute_step, how a
prior without a cache such as the PixelCNN is sampled), in the same run.

    python -m experiments.bench_sampling            # 16x16 and 32x32 grids, ~2-4 min on 2 cores
    python -m experiments.bench_sampling --quick    # a tiny model (smoke test)
    python -m experiments.bench_sampling --decoding # MaskGIT against the cache, guidance
    python -m experiments.bench_sampling --vs_gpt2  # against Hugging Face GPT-2's cache

--decoding compares, in images/s on one grid at batch 64 (DECODING_MODEL, 16x16), the
class-conditional transformer sampled with its key-value cache against a MaskGIT prior of
the same size decoded in maskgit_steps = 8 parallel steps, each unguided and with
classifier-free guidance (scale 2: both halves in one batch of 128). Its last line is
`summary: maskgit_vs_cache=… guided_cost_transformer=… guided_cost_maskgit=…` (MaskGIT's
images/s over the cache's; unguided over guided images/s). About 5 minutes on a loaded
2-core CPU.

--vs_gpt2 times the cached sampler against a PyTorch peer of the same size in the same
run (experiments/bench_sampling_peer.py; pip install -e .[bench]).

One model for all grids (4 layers, width 256, 8 heads, 512 codes, batch 8; sampled at
temperature 1 with top-k 64), built per grid only for its position embeddings. Each sampler
is compiled ahead of time, so compilation is excluded; each time is the best of several
calls. The cached sampler is timed over the whole grid. The full-recomputation sampler is
one compiled loop whose every step runs the model on the whole fixed-length sequence, so
each step costs the same: it is timed over its first `full_steps` positions and its
tokens/s is batch * full_steps / seconds. (A recomputation over only the prefix would cost
about half as much on average, over a grid; the speedup against it would be about half.)
"""
from __future__ import annotations

import argparse
import math
import os
from typing import NamedTuple

import jax
import jax.numpy as jnp

from experiments import bench_sampling_peer, benchmarking
from experiments.benchmarking import best_time
from vqjax import sampling
from vqjax.models import MaskGITPrior, TransformerPrior


class Model(NamedTuple):
  num_layers: int
  embed_dim: int
  num_heads: int
  codebook_size: int
  batch_size: int


class Case(NamedTuple):
  grid: int        # the grid is grid x grid
  full_steps: int  # positions timed for full recomputation
  repeats: int     # timed calls of each sampler


MODEL = Model(num_layers=4, embed_dim=256, num_heads=8, codebook_size=512, batch_size=8)
CASES = (Case(16, full_steps=8, repeats=3), Case(32, full_steps=3, repeats=2))
QUICK_MODEL = Model(num_layers=1, embed_dim=32, num_heads=2, codebook_size=32, batch_size=2)
QUICK_CASES = (Case(8, full_steps=4, repeats=1), Case(32, full_steps=2, repeats=1))
SAMPLING = dict(temperature=1.0, top_k=64)


class Result(NamedTuple):
  case: Case
  batch_size: int
  cached_s: float  # seconds for the whole grid
  full_s: float    # seconds for case.full_steps positions

  @property
  def cached_tokens_per_s(self) -> float:
    return self.batch_size * self.case.grid ** 2 / self.cached_s

  @property
  def full_tokens_per_s(self) -> float:
    return self.batch_size * self.case.full_steps / self.full_s

  @property
  def speedup(self) -> float:
    return self.cached_tokens_per_s / self.full_tokens_per_s


def full_recompute_sampler(prior: TransformerPrior, *, batch_size: int, **sampling_args):
  """The jitted sampler(variables, rng) -> int32 [batch_size, L] that recomputes the whole
  sequence every step, on the same loop and keys as sampling.make_sampler."""
  def sample(variables, rng):
    def tokens_to_logits(tokens):
      grid = tokens.reshape(batch_size, *prior.grid_shape)
      return prior.apply(variables, grid, train=False)

    return sampling.decode(sampling.recompute_step(tokens_to_logits), None, rng,
                           batch_size=batch_size, length=prior.length, **sampling_args)

  return jax.jit(sample)


def compiled_sampler(prior: TransformerPrior, variables, spec: Model, method: str,
                     num_steps: int):
  """() -> tokens, the sampler compiled ahead of time for these variables; method 'cached'
  (the key-value cache) or 'full' (recomputation)."""
  make = sampling.make_sampler if method == "cached" else full_recompute_sampler
  sampler = make(prior, batch_size=spec.batch_size, num_steps=num_steps, **SAMPLING)
  rng = jax.random.PRNGKey(1)
  compiled = sampler.lower(variables, rng).compile()
  return lambda: compiled(variables, rng).block_until_ready()


def run_case(case: Case, spec: Model) -> Result:
  prior = TransformerPrior(codebook_size=spec.codebook_size, grid_shape=(case.grid, case.grid),
                           num_layers=spec.num_layers, embed_dim=spec.embed_dim,
                           num_heads=spec.num_heads)
  tokens = jnp.zeros((spec.batch_size, case.grid, case.grid), jnp.int32)
  variables = jax.jit(lambda rng: prior.init(rng, tokens, train=False))(jax.random.PRNGKey(0))
  cached = compiled_sampler(prior, variables, spec, "cached", case.grid ** 2)
  full = compiled_sampler(prior, variables, spec, "full", case.full_steps)
  return Result(case, spec.batch_size, cached_s=best_time(cached, case.repeats, warmup=1),
                full_s=best_time(full, case.repeats, warmup=1))


TABLE_COLUMNS = ("grid", "batch", "cached tok/s", "full tok/s", "cached ms/grid",
                 "full ms/step", "speedup")


def table_row(result: Result) -> tuple[str, ...]:
  grid = result.case.grid
  return (f"{grid}x{grid}", str(result.batch_size), f"{result.cached_tokens_per_s:.1f}",
          f"{result.full_tokens_per_s:.1f}", f"{1e3 * result.cached_s:.1f}",
          f"{1e3 * result.full_s / result.case.full_steps:.1f}", f"{result.speedup:.2f}")


def format_table(results) -> str:
  return benchmarking.format_table(TABLE_COLUMNS, [table_row(result) for result in results])


def summary_line(results) -> str:
  """The last line of the output; nan when the 32x32 grid was not run."""
  by_grid = {result.case.grid: result for result in results}
  speedup = by_grid[32].speedup if 32 in by_grid else math.nan
  return f"summary: cache_speedup_32x32={speedup:.2f}"


DECODING_MODEL = Model(num_layers=4, embed_dim=256, num_heads=8, codebook_size=512,
                       batch_size=64)
DECODING_CASE = Case(16, full_steps=0, repeats=2)
QUICK_DECODING_MODEL = Model(num_layers=1, embed_dim=32, num_heads=2, codebook_size=32,
                             batch_size=4)
QUICK_DECODING_CASE = Case(8, full_steps=0, repeats=1)
GUIDANCE_SCALE = 2.0
PRIOR_KINDS = {"transformer (cache)": TransformerPrior, "maskgit (T=8)": MaskGITPrior}


class DecodingResult(NamedTuple):
  prior: str
  guided: bool
  batch_size: int
  seconds: float  # for one batch of grids

  @property
  def images_per_s(self) -> float:
    return self.batch_size / self.seconds


def run_decoding(case: Case, spec: Model) -> list[DecodingResult]:
  """Each kind of prior, unguided and guided, sampled over case's grid (see --decoding)."""
  results = []
  labels = jnp.arange(spec.batch_size, dtype=jnp.int32) % 10
  tokens = jnp.zeros((spec.batch_size, case.grid, case.grid), jnp.int32)
  for name, cls in PRIOR_KINDS.items():
    prior = cls(codebook_size=spec.codebook_size, grid_shape=(case.grid, case.grid),
                num_layers=spec.num_layers, embed_dim=spec.embed_dim,
                num_heads=spec.num_heads, num_classes=10, label_dropout_rate=0.1)
    variables = jax.jit(lambda rng, prior=prior: prior.init(rng, tokens, labels=labels,
                                                            train=False))(jax.random.PRNGKey(0))
    options = dict(maskgit_steps=8) if cls is MaskGITPrior else {}
    for guided in (False, True):
      guidance = dict(guidance_scale=GUIDANCE_SCALE) if guided else {}
      sampler = sampling.make_sampler(prior, batch_size=spec.batch_size, **SAMPLING,
                                      **options, **guidance)
      rng = jax.random.PRNGKey(1)
      compiled = sampler.lower(variables, rng, labels, None).compile()
      seconds = best_time(lambda: compiled(variables, rng, labels, None).block_until_ready(),
                          case.repeats, warmup=1)
      results.append(DecodingResult(name, guided, spec.batch_size, seconds))
      print(f"measured {name}{' guided' if guided else ''}", flush=True)
  return results


def format_decoding_table(results) -> str:
  return benchmarking.format_table(
      ("prior", "guidance", "batch", "images/s", "s/batch"),
      [(r.prior, f"s={GUIDANCE_SCALE:g}" if r.guided else "none", str(r.batch_size),
        f"{r.images_per_s:.2f}", f"{r.seconds:.3f}") for r in results])


def decoding_summary_line(results) -> str:
  speed = {(r.prior, r.guided): r.images_per_s for r in results}
  cache, maskgit_name = PRIOR_KINDS
  return (f"summary: maskgit_vs_cache={speed[maskgit_name, False] / speed[cache, False]:.2f} "
          f"guided_cost_transformer={speed[cache, False] / speed[cache, True]:.2f} "
          f"guided_cost_maskgit={speed[maskgit_name, False] / speed[maskgit_name, True]:.2f}")


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true",
                      help="a tiny model on 8x8 and 32x32 grids, one repetition (smoke test)")
  parser.add_argument("--decoding", action="store_true",
                      help="MaskGIT (T=8) against the cached transformer, unguided and "
                      "guided, in images/s at batch 64 on a 16x16 grid")
  bench_sampling_peer.add_arguments(parser)
  return parser.parse_args(argv)


def main(argv=None) -> list:
  args = parse_args(argv)
  if args.vs_gpt2 or args.worker_threads:
    return bench_sampling_peer.main(args)
  if args.decoding:
    spec, case = ((QUICK_DECODING_MODEL, QUICK_DECODING_CASE) if args.quick
                  else (DECODING_MODEL, DECODING_CASE))
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} cores; "
          f"{spec._asdict()}, {case.grid}x{case.grid}; sampling {SAMPLING}")
    results = run_decoding(case, spec)
    print(format_decoding_table(results))
    print(decoding_summary_line(results))
    return results
  spec, cases = (QUICK_MODEL, QUICK_CASES) if args.quick else (MODEL, CASES)
  print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} cores; "
        f"{spec._asdict()}; sampling {SAMPLING}")
  results = []
  for case in cases:
    results.append(run_case(case, spec))
    print(f"measured {case.grid}x{case.grid}", flush=True)
  print(format_table(results))
  print(summary_line(results))
  return results


if __name__ == "__main__":
  main()
