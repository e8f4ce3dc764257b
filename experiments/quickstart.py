r"""Quick start: learn a codebook of 4x4 patches of the built-in handwritten digits.

Each 8x8 digit becomes a 2x2 grid of tokens: a k-means-initialized EMA codebook learns
the patches, dead codes are restarted from the batch, and the held-out digits are
reconstructed from their tokens alone. Needs no network (scikit-learn bundles the digits).

  python -m experiments.quickstart --workdir=/tmp/vqjax_quickstart
"""
from __future__ import annotations

import argparse
import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from vqjax import quantizers

PATCH = 4


def load_digits():
  """(train, test) float32 images [N, 8, 8] in [0, 1]; the last fifth is held out."""
  from sklearn.datasets import load_digits as sklearn_digits  # bundled with scikit-learn
  images = sklearn_digits().images.astype(np.float32) / 16.0
  split = int(0.8 * len(images))
  return images[:split], images[split:]


def to_patches(images):
  n, height, width = images.shape
  grid = images.reshape(n, height // PATCH, PATCH, width // PATCH, PATCH)
  return grid.transpose(0, 1, 3, 2, 4).reshape(n, height // PATCH, width // PATCH, PATCH * PATCH)


def from_patches(patches):
  n, rows, cols, _ = patches.shape
  grid = patches.reshape(n, rows, cols, PATCH, PATCH).transpose(0, 1, 3, 2, 4)
  return grid.reshape(n, rows * PATCH, cols * PATCH)


def make_train_step(threshold: float):
  @jax.jit
  def train_step(state, patches, key):
    out = quantizers.quantize(patches, state.codebook)
    state = quantizers.ema.update(state, patches, out.indices, decay=0.99)
    state, _ = quantizers.restart_dead_codes_ema(key, state, patches, threshold=threshold)
    return state, quantizers.codebook_metrics(out.indices, state.codebook.shape[0])
  return train_step


def save_grid(path, originals, reconstructions, count=16, scale=6):
  """Originals on the top row, their reconstructions below, as a PNG."""
  def row(images):
    padded = np.pad(np.clip(images[:count], 0, 1), ((0, 0), (1, 1), (1, 1)))
    return np.concatenate(list(padded), axis=1)

  grid = np.concatenate([row(originals), row(reconstructions)], axis=0)
  pixels = (grid * 255).astype(np.uint8)
  Image.fromarray(pixels).resize((pixels.shape[1] * scale, pixels.shape[0] * scale),
                                 Image.NEAREST).save(path)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", default="workdir/quickstart")
  parser.add_argument("--codebook_size", type=int, default=64)
  parser.add_argument("--steps", type=int, default=300)
  parser.add_argument("--batch_size", type=int, default=1024)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  workdir = pathlib.Path(args.workdir)
  workdir.mkdir(parents=True, exist_ok=True)

  train_images, test_images = load_digits()
  train = jnp.asarray(to_patches(train_images)).reshape(-1, PATCH * PATCH)
  key = jax.random.key(args.seed)
  init_key, key = jax.random.split(key)
  codebook = quantizers.kmeans_codebook(init_key, train, args.codebook_size, iterations=5)
  state = quantizers.ema.init(codebook)
  # A code is dead when it gets under 1/16 of its fair share of a batch.
  train_step = make_train_step(threshold=args.batch_size / args.codebook_size / 16)

  start = time.perf_counter()
  for step in range(args.steps):
    batch_key, restart_key, key = jax.random.split(key, 3)
    batch = train[jax.random.randint(batch_key, (args.batch_size,), 0, train.shape[0])]
    state, usage = train_step(state, batch, restart_key)
    if step % 100 == 0 or step == args.steps - 1:
      print(f"step {step:4d}  perplexity {float(usage['perplexity']):6.1f}  "
            f"codes used {float(usage['codes_used_fraction']):.0%}", flush=True)

  test_patches = jnp.asarray(to_patches(test_images))
  out = quantizers.quantize(test_patches, state.codebook)
  reconstructions = np.asarray(from_patches(np.asarray(out.quantized)))
  mse = float(np.mean((reconstructions - test_images) ** 2))
  usage = quantizers.codebook_metrics(out.indices, args.codebook_size)
  results = {
      "test_mse": mse,
      "test_normalized_mse": mse / float(np.var(test_images)),
      "test_perplexity": float(usage["perplexity"]),
      "test_codes_used_fraction": float(usage["codes_used_fraction"]),
      "tokens_per_image": int(np.prod(out.indices.shape[1:])),
      "codebook_size": args.codebook_size,
      "train_seconds": time.perf_counter() - start,
  }
  (workdir / "metrics.json").write_text(json.dumps(results, indent=2))
  save_grid(workdir / "reconstructions.png", test_images, reconstructions)
  print(json.dumps(results, indent=2))
  print(f"wrote {workdir / 'reconstructions.png'} and {workdir / 'metrics.json'}")
  return results


if __name__ == "__main__":
  main()
