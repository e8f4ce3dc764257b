r"""VQGAN on the built-in digits (scikit-learn's 8x8 digits): no network, about 20 minutes
on 2 CPU cores.

4x4 tokens (factor 2) from a 128-code EMA codebook as in digits.py; a small taming-style
generator and PatchGAN; LPIPS reads the digits resized to 28x28 (VGG16 needs 16 a side).
LPIPS's VGG16 dominates the step, and XLA:CPU runs it about 5x slower at 16x16 or 32x32
than at 28x28 (1.3 and 1.9 s against 0.28 s for forward and backward on 16 images), so
28 it is: on a quiet 2-core CPU about 1.9 steps/s before the discriminator starts (step
500) and 1.15 after, 1,500 steps of 32 in about 20 minutes.

  python -m experiments.train --config=experiments/configs/vqgan_digits.py --workdir=/tmp/vg
"""
from __future__ import annotations

from experiments.configs import default


def get_config(arg: str | None = None):
  args = default.parse_arg(arg, tiny=False)
  config = default.get_vqgan_config()
  config.data.update(dataset="vqjax_digits", download=True, random_flip=False,
                     batch_size=32, eval_batch_size=128, variance_examples=1_500)
  config.model.update(image_channels=1, channels=32, channel_multipliers=(1, 2),
                      num_res_blocks=1, attention_resolutions=(4,), z_channels=16,
                      embedding_dim=16)
  config.model.quantizer.update(codebook_size=128, dim=16, ema_decay=0.95,
                                dead_code_threshold=0.25)
  config.optimizer.update(learning_rate=1e-3, warmup_steps=100, schedule="cosine",
                          end_learning_rate_fraction=0.05, grad_clip_norm=1.0)
  config.discriminator.update(channels=16, num_layers=1, norm="group")
  config.discriminator_optimizer.update(learning_rate=2e-4, schedule="constant")
  config.gan.update(discriminator_start=500, discriminator_weight=0.5)
  config.lpips.resize_to = 28
  config.train.update(num_steps=1_500, log_every_steps=10, checkpoint_every_steps=500,
                      kmeans_init=True, grid_examples=32)
  if args.tiny:
    default.shrink_vqgan(config)
  return config
