"""vqjax's cached transformer sampler against Hugging Face transformers' GPT-2
`generate(use_cache=True)` on the CPU, in one run (python -m experiments.bench_sampling
--vs_gpt2; the peer needs pip install -e .[bench]).

The same size on both sides: 4 layers, width 256, 8 heads, MLP 4x, 512 codes, one 16x16
grid (256 tokens) per sample, batch 8, sampled at temperature 1 with top-k 64. vqjax's
TransformerPrior starts from its learned start token and adds row and column position
embeddings; GPT-2 (randomly initialized from a GPT2Config, nothing downloaded) is prompted
with one token and generates 256 more (min_new_tokens = max_new_tokens, no end token), so
both produce 256 tokens per sample with one network evaluation per token, each reusing
its key-value cache. Parameter counts are printed for both.

Each thread count runs in its own process, where XLA (XLA_FLAGS and the process's CPU
affinity, which sizes XLA's thread pool) and torch (set_num_threads) are held to it. In
that process both samplers are built and warmed up (vqjax's compiled ahead of time, so
compilation is excluded), then alternate A B A B for --repetitions whole grids each.
Reported: min and median seconds per batch of grids, tokens/s from the minimum, and the
ratio vqjax tokens/s over GPT-2's (> 1: vqjax is faster). The last line:

    summary: vs_gpt2_1thread=<ratio> vs_gpt2_2threads=<ratio>

--quick shrinks both models (1 layer, width 32, 8x8 grid, 32 codes), --skip_gpt2 times
vqjax alone (ratios nan): the smoke test, which needs no torch.
"""
from __future__ import annotations

import json
import os
import statistics
from typing import NamedTuple

from experiments import benchmarking

WARMUP_GRIDS = 1


class PeerModel(NamedTuple):
  num_layers: int
  embed_dim: int
  num_heads: int
  codebook_size: int
  grid: int
  batch_size: int

  @property
  def length(self) -> int:
    return self.grid ** 2


PEER_MODEL = PeerModel(num_layers=4, embed_dim=256, num_heads=8, codebook_size=512, grid=16,
                       batch_size=8)
QUICK_PEER_MODEL = PeerModel(num_layers=1, embed_dim=32, num_heads=2, codebook_size=32, grid=8,
                             batch_size=2)
TOP_K = 64


def add_arguments(parser) -> None:
  parser.add_argument("--vs_gpt2", action="store_true",
                      help="time vqjax's cached sampler against Hugging Face GPT-2 "
                      "generate(use_cache=True) on the CPU")
  benchmarking.add_thread_arguments(
      parser, threads="1,2",
      threads_help="thread counts to compare at (--vs_gpt2), one process each",
      repetitions=5,
      repetitions_help="timed grids per framework (--vs_gpt2), interleaved")
  parser.add_argument("--skip_gpt2", action="store_true",
                      help="time vqjax alone (--vs_gpt2 without torch)")


def vqjax_sampler(spec: PeerModel):
  """(() -> None sampling one batch of grids, parameter count): the cached sampler,
  compiled ahead of time."""
  import jax
  import jax.numpy as jnp
  from vqjax import sampling
  from vqjax.models import TransformerPrior

  prior = TransformerPrior(codebook_size=spec.codebook_size, grid_shape=(spec.grid, spec.grid),
                           num_layers=spec.num_layers, embed_dim=spec.embed_dim,
                           num_heads=spec.num_heads)
  tokens = jnp.zeros((spec.batch_size, spec.grid, spec.grid), jnp.int32)
  variables = jax.jit(lambda rng: prior.init(rng, tokens, train=False))(jax.random.PRNGKey(0))
  sampler = sampling.make_sampler(prior, batch_size=spec.batch_size, temperature=1.0,
                                  top_k=min(TOP_K, spec.codebook_size))
  rng = jax.random.PRNGKey(1)
  compiled = sampler.lower(variables, rng).compile()
  count = sum(leaf.size for leaf in jax.tree.leaves(variables))
  return (lambda: compiled(variables, rng).block_until_ready()), count


def gpt2_sampler(spec: PeerModel, threads: int):
  """(() -> None sampling one batch of grids, parameter count): a randomly initialized
  GPT-2 of spec's size, generate(use_cache=True) from one prompt token."""
  import sys
  import torch
  # GPT-2 needs nothing of torchvision, whose PyPI wheel (installed beside taming) does not
  # load with the CPU torch; transformers would import it when present, so it is hidden.
  sys.modules.setdefault("torchvision", None)
  import transformers

  torch.set_num_threads(threads)
  torch.manual_seed(0)
  config = transformers.GPT2Config(
      vocab_size=spec.codebook_size, n_positions=spec.length + 1, n_embd=spec.embed_dim,
      n_layer=spec.num_layers, n_head=spec.num_heads, n_inner=4 * spec.embed_dim,
      resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=None,
      pad_token_id=0)
  model = transformers.GPT2LMHeadModel(config).eval()
  prompt = torch.zeros((spec.batch_size, 1), dtype=torch.long)
  generation = dict(do_sample=True, temperature=1.0, top_k=min(TOP_K, spec.codebook_size),
                    top_p=1.0, max_new_tokens=spec.length, min_new_tokens=spec.length,
                    use_cache=True, eos_token_id=None, pad_token_id=0)

  def sample():
    with torch.inference_mode():
      tokens = model.generate(prompt, attention_mask=torch.ones_like(prompt), **generation)
    if tokens.shape != (spec.batch_size, spec.length + 1):
      raise RuntimeError(f"GPT-2 generated {tuple(tokens.shape)} tokens, expected "
                         f"{(spec.batch_size, spec.length + 1)}")
  return sample, sum(parameter.numel() for parameter in model.parameters())


def worker(threads: int, *, quick: bool, repetitions: int, skip_gpt2: bool) -> dict:
  """In a process held to `threads`: {'times': {'vqjax': [s...], 'gpt2': [s...]}, ...}."""
  spec = QUICK_PEER_MODEL if quick else PEER_MODEL
  samplers, parameters = {}, {}
  samplers["vqjax"], parameters["vqjax"] = vqjax_sampler(spec)
  if not skip_gpt2:
    samplers["gpt2"], parameters["gpt2"] = gpt2_sampler(spec, threads)
  times = benchmarking.interleaved_times(samplers, repetitions, warmup=WARMUP_GRIDS)
  return {"threads": threads, "model": spec._asdict(), "parameters": parameters,
          "times": times}


def tokens_per_s(result: dict, name: str) -> float:
  model = result["model"]
  return model["batch_size"] * model["grid"] ** 2 / min(result["times"][name])


def ratio(result: dict) -> float:
  """vqjax's tokens/s over GPT-2's, from the minima (> 1: vqjax is faster); nan without
  GPT-2."""
  if "gpt2" not in result["times"]:
    return float("nan")
  return min(result["times"]["gpt2"]) / min(result["times"]["vqjax"])


def summary_line(results: dict[int, dict]) -> str:
  at = lambda threads: ratio(results[threads]) if threads in results else float("nan")
  return f"summary: vs_gpt2_1thread={at(1):.3f} vs_gpt2_2threads={at(2):.3f}"


def table(results: dict[int, dict]) -> str:
  rows = []
  for threads, result in sorted(results.items()):
    for name, times in result["times"].items():
      rows.append((str(threads), name, str(result["parameters"][name]), f"{min(times):.3f}",
                   f"{statistics.median(times):.3f}", str(len(times)),
                   f"{tokens_per_s(result, name):.0f}",
                   f"{ratio(result):.3f}" if name == "vqjax" else ""))
  return benchmarking.format_table(
      ("threads", "framework", "parameters", "min s", "median s", "grids", "tok/s",
       "vqjax/gpt2"), rows)


def main(args) -> dict[int, dict]:
  spec = QUICK_PEER_MODEL if args.quick else PEER_MODEL
  results = benchmarking.compare_across_threads(
      args, module="experiments.bench_sampling",
      worker_arguments=["--vs_gpt2", f"--repetitions={args.repetitions}"]
      + ["--quick"] * args.quick + ["--skip_gpt2"] * args.skip_gpt2,
      work=lambda threads: worker(threads, quick=args.quick, repetitions=args.repetitions,
                                  skip_gpt2=args.skip_gpt2),
      header=f"vqjax vs Hugging Face GPT-2 generate(use_cache=True) on the CPU "
      f"({os.cpu_count()} cores); {spec._asdict()}, temperature 1, top-k "
      f"{min(TOP_K, spec.codebook_size)}; threads {args.threads}, {args.repetitions} "
      f"interleaved grids each after {WARMUP_GRIDS} warm-up",
      describe=lambda result: f"parameters {result['parameters']}; seconds per batch "
      f"{json.dumps(result['times'])}",
      report=(table, summary_line))
  return results
