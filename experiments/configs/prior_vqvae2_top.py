r"""VQ-VAE-2 top prior: a transformer over the 32x32 top token grids (K = 512) of the
ImageNet 256x256 tokenizer (vqvae2_imagenet256.py), class-conditional on the 1,000
classes. Pair it with prior_vqvae2_bottom.py; both train at once from the same tokenizer.

The paper's top prior is a PixelCNN with self-attention; this is a decoder-only
transformer of 12 layers of width 512 (39M parameters), bfloat16 matmuls, over 1,024
positions. Batch 128 is 16 grids per device on 8 devices; XLA's memory analysis of the
compiled train step (CPU backend, a rough guide) puts that at about 30 GiB per device,
linear in the per-device batch: halve config.data.batch_size on 16 GiB devices.

  python -m experiments.train_prior --config=experiments/configs/prior_vqvae2_top.py \
      --config.tokenizer_workdir=/tmp/vqvae2 --workdir=/tmp/vqvae2_top

Its workdir has metrics.json (the top grid's NLL) but no samples.png: a VQ-VAE-2 decodes
a top and a bottom grid together, so the top prior's samples are decoded through the
bottom prior (--top_prior_workdir of experiments.sample, see prior_vqvae2_bottom.py).
"""
from __future__ import annotations

from experiments.configs import default


def get_config(arg: str | None = None):
  args = default.parse_arg(arg, tiny=False)
  config = default.get_prior_config()
  config.level = "top"
  config.model.update(name="transformer", num_layers=12, embed_dim=512, num_heads=8,
                      dropout_rate=0.1, num_classes=1000, dtype="bfloat16")
  config.data.update(train_split="train", eval_split="validation", batch_size=128,
                     eval_batch_size=256)
  config.optimizer.update(learning_rate=3e-4, warmup_steps=2_000)
  config.train.update(num_steps=200_000, log_every_steps=500, checkpoint_every_steps=5_000,
                      eval_every_steps=0, num_samples=16)
  return shrink(config) if args.tiny else config


def shrink(config):
  """The 'tiny' switch of both VQ-VAE-2 priors."""
  default.shrink_prior(config)
  config.model.dtype = "float32"
  config.data.update(train_split="train[:1000]", eval_split="validation[:500]")
  return config
