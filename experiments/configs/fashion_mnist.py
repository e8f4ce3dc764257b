r"""VQ-VAE on Fashion-MNIST: mnist.py's model on 28x28 clothing images.

TFDS downloads Fashion-MNIST into its default data_dir on first use (needs the network);
point --config.data.data_dir at a prepared copy otherwise.

  python -m experiments.train --config=experiments/configs/fashion_mnist.py --workdir=DIR
"""
from __future__ import annotations

from experiments.configs import default
from experiments.configs import mnist


def get_config(arg: str | None = None):
  args = default.parse_arg(arg, tiny=False)
  config = mnist.get_config("tiny" if args.tiny else None)
  config.data.update(dataset="fashion_mnist", data_dir=None, download=True)
  return config
