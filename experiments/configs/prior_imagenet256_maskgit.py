r"""MaskGIT prior (Chang et al. 2022) at maskgit's ImageNet 256x256 size: a bidirectional
transformer of 24 layers, width 768, 16 heads (MLP 3,072), dropout 0.1, over the 16x16
token grids (K = 1,024) of the factor-16 VQGAN (vqgan_imagenet256_f16.py),
class-conditional on the 1,000 classes with a null class for classifier-free guidance.
Training as maskgit's: cosine mask schedule, label smoothing 0.1, batch 256, Adam
(0.9, 0.96) at 1e-4 after 5,000 warm-up steps, weight decay 0.045, 300 epochs (1.5M
steps of 256); bfloat16 matmuls. Sampling: 8 parallel steps, choice temperature 4.5.

  python -m experiments.train --config=experiments/configs/vqgan_imagenet256_f16.py \
      --workdir=/tmp/vqgan_f16
  python -m experiments.train_prior --config=experiments/configs/prior_imagenet256_maskgit.py \
      --config.tokenizer_workdir=/tmp/vqgan_f16 --workdir=/tmp/imagenet_maskgit
  python -m experiments.sample --workdir=/tmp/imagenet_maskgit --label=207 --steps=12 \
      --guidance_scale=2

`:tiny` is a test-sized model over the tiny VQGAN's grids (a few steps).
"""
from __future__ import annotations

from experiments.configs import default

EPOCHS = 300
TRAIN_IMAGES = 1_281_167  # ImageNet-1k's train split


def get_config(arg: str | None = None):
  args = default.parse_arg(arg, tiny=False)
  config = default.get_maskgit_prior_config()
  config.model.update(num_layers=24, embed_dim=768, num_heads=16, mlp_ratio=4,
                      dropout_rate=0.1, num_classes=1000, dtype="bfloat16")
  config.data.update(train_split="train", eval_split="validation", batch_size=256,
                     eval_batch_size=256)
  config.optimizer.update(learning_rate=1e-4, warmup_steps=5_000, b1=0.9, b2=0.96,
                          weight_decay=0.045)
  config.train.update(num_steps=EPOCHS * TRAIN_IMAGES // config.data.batch_size,
                      log_every_steps=500, checkpoint_every_steps=10_000,
                      eval_every_steps=0, num_samples=16)
  if args.tiny:
    default.shrink_prior(config)
    config.model.dtype = "float32"
    config.data.update(train_split="train[:1000]", eval_split="validation[:500]")
  return config
