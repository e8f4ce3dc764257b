r"""VQGAN on ImageNet at 256x256, factor 8 (latent-diffusion's vq-f8): 32x32 tokens from
K = 16384 codes of dimension 4; width 128, multipliers 1,2,2,4, attention at 32x32; the
f16 config's loss, discriminator (on from the start) and optimizers.

  python -m experiments.train --config=experiments/configs/vqgan_imagenet256_f8.py \
      --workdir=DIR
"""
from __future__ import annotations

from experiments.configs import default


def get_config(arg: str | None = None):
  args = default.parse_arg(arg, tiny=False, codebook_size=16384)
  config = default.get_vqgan_config()
  config.data.update(dataset="imagenet2012", image_size=256, eval_split="validation",
                     download=False, shuffle_buffer_size=10_000, batch_size=64,
                     eval_batch_size=64)
  config.model.update(channel_multipliers=(1, 2, 2, 4), attention_resolutions=(32,),
                      z_channels=4, embedding_dim=4)
  config.model.quantizer.update(codebook_size=args.codebook_size, dim=4)
  config.gan.update(discriminator_start=0, discriminator_weight=0.75)
  config.train.update(num_steps=1_000_000, log_every_steps=500,
                      checkpoint_every_steps=10_000)
  if args.tiny:
    default.shrink_vqgan(config)
    config.data.image_size = 32
  return config
