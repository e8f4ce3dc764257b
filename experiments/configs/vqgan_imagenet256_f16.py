r"""VQGAN on ImageNet at 256x256, factor 16 (taming-transformers' vqgan_imagenet_f16_1024
and _16384): 16x16 tokens from K = 1024 codes of dimension 256 (`:codebook_size=16384`
for the larger codebook); width 128, multipliers 1,1,2,2,4, attention at 16x16, two
residual blocks per level; L1 + LPIPS + hinge PatchGAN with the adaptive weight; Adam
(0.5, 0.9) at taming's 4.5e-6 per image of the batch for both networks.

Taming switches the discriminator on after 250k steps for K = 1024 (weight 0.8) and from
the start for K = 16384 (weight 0.75); so do these configs. ImageNet must be prepared in
TFDS's data_dir by hand (it cannot be downloaded); 8 images per device.

  python -m experiments.train --config=experiments/configs/vqgan_imagenet256_f16.py \
      --workdir=DIR
  python -m experiments.train \
      --config=experiments/configs/vqgan_imagenet256_f16.py:codebook_size=16384 --workdir=DIR
"""
from __future__ import annotations

from experiments.configs import default


def get_config(arg: str | None = None):
  args = default.parse_arg(arg, tiny=False, codebook_size=1024)
  config = default.get_vqgan_config()
  config.data.update(dataset="imagenet2012", image_size=256, eval_split="validation",
                     download=False, shuffle_buffer_size=10_000, batch_size=64,
                     eval_batch_size=64)
  config.model.quantizer.update(codebook_size=args.codebook_size, dim=256)
  large = args.codebook_size > 1024
  config.gan.update(discriminator_start=0 if large else 250_001,
                    discriminator_weight=0.75 if large else 0.8)
  config.train.update(num_steps=1_000_000, log_every_steps=500,
                      checkpoint_every_steps=10_000)
  if args.tiny:
    default.shrink_vqgan(config)
    config.data.image_size = 32
  return config
