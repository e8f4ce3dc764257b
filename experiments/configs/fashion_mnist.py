r"""VQ-VAE on Fashion-MNIST: mnist.py's model on 28x28 clothing images, with mnist.py's
switches (tiny, codebook_size=128, gradient_codebook=true, local_encoder=true,
downsample_kernel=3).

TFDS downloads Fashion-MNIST into its default data_dir on first use (needs the network);
point --config.data.data_dir at a prepared copy otherwise.

  python -m experiments.train --config=experiments/configs/fashion_mnist.py --workdir=DIR
  python -m experiments.train --config=experiments/configs/fashion_mnist.py:codebook_size=128 \
      --workdir=DIR
"""
from __future__ import annotations

from experiments.configs import mnist


def get_config(arg: str | None = None):
  config = mnist.get_config(arg)  # the same switches, parsed by mnist.py
  config.data.update(dataset="fashion_mnist", data_dir=None, download=True)
  return config
