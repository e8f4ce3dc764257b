r"""Gated PixelCNN prior over the 7x7 token grids of the MNIST tokenizer (mnist.py), as
in the VQ-VAE paper, class-conditional on the digit. 6 layers of 3x3 kernels see every
earlier position of a 7x7 grid. prior_mnist.py's training (8,000 steps of 64 at lr 1e-3);
0.940 nats per token on the grids prior_mnist.py's docstring names (README, "Priors").

  python -m experiments.train_prior --config=experiments/configs/prior_mnist_pixelcnn.py \
      --config.tokenizer_workdir=/tmp/mnist --workdir=/tmp/mnist_pixelcnn
"""
from __future__ import annotations

import ml_collections

from experiments.configs import default, prior_mnist


def get_config(arg: str | None = None):
  """prior_mnist.py's data, steps and tiny switch with a gated PixelCNN for the model."""
  args = default.parse_arg(arg, tiny=False)
  config = prior_mnist.get_config()
  config.model = ml_collections.ConfigDict(dict(
      name="pixelcnn", hidden_channels=64, num_layers=6, kernel_size=3, num_classes=10,
      label_dropout_rate=0.1, dtype="float32"))
  config.optimizer.update(weight_decay=0.0)
  return prior_mnist.shrink(config) if args.tiny else config
