r"""VQ-VAE on ImageNet at 128x128 as in the paper (van den Oord et al. 2017, section 4.2):
32x32 tokens (downsample factor 4) from K = 512 codes of dimension 64, 256 hidden units,
Adam at 2e-4 with batch 128.

ImageNet must be prepared in TFDS's data_dir by hand (it cannot be downloaded).

  python -m experiments.train --config=experiments/configs/imagenet128.py --workdir=DIR
"""
from __future__ import annotations

from experiments.configs import default


def get_config(arg: str | None = None):
  args = default.parse_arg(arg, tiny=False)
  config = default.get_config()
  config.data.update(dataset="imagenet2012", image_size=128, eval_split="validation",
                     download=False, shuffle_buffer_size=10_000)
  config.train.update(checkpoint_every_steps=10_000, log_every_steps=500)
  if args.tiny:
    default.shrink(config)
  return config
