r"""VQGAN on ImageNet at 256x256, factor 8 (latent-diffusion's vq-f8): 32x32 tokens from
K = 16384 codes of dimension 4; width 128, multipliers 1,2,2,4, attention at 32x32; the
f16 config's loss, discriminator (on from the start, as for K = 16384) and optimizers.

  python -m experiments.train --config=experiments/configs/vqgan_imagenet256_f8.py \
      --workdir=DIR
"""
from __future__ import annotations

from experiments.configs import default, vqgan_imagenet256_f16


def get_config(arg: str | None = None):
  args = default.parse_arg(arg, tiny=False, codebook_size=16384)
  config = vqgan_imagenet256_f16.get_config(f"codebook_size={args.codebook_size}")
  config.model.update(channel_multipliers=(1, 2, 2, 4), attention_resolutions=(32,),
                      z_channels=4, embedding_dim=4)
  config.model.quantizer.dim = 4
  if args.tiny:
    default.shrink_vqgan(config)
    config.data.image_size = 32
  return config
