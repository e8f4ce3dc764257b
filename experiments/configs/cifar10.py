r"""VQ-VAE on CIFAR-10 as in the paper (van den Oord et al. 2017, section 4.1): 32x32
images as 8x8 tokens; 256 hidden units, K = 512 codes of dimension 64, beta 0.25,
Adam at 2e-4 with batch 128 for 250k steps; the codebook learned by its loss.

  python -m experiments.train --config=experiments/configs/cifar10.py --workdir=DIR
"""
from __future__ import annotations

from experiments.configs import default


def get_config(arg: str | None = None):
  args = default.parse_arg(arg, tiny=False)
  config = default.get_config()  # the defaults are this experiment
  config.data.update(dataset="cifar10", download=True)
  if args.tiny:
    default.shrink(config)
  return config
