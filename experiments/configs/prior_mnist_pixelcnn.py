r"""Gated PixelCNN prior over the 7x7 token grids of the MNIST tokenizer (mnist.py), as
in the VQ-VAE paper, class-conditional on the digit. 6 layers of 3x3 kernels see every
earlier position of a 7x7 grid.

  python -m experiments.train_prior --config=experiments/configs/prior_mnist_pixelcnn.py \
      --config.tokenizer_workdir=/tmp/mnist --workdir=/tmp/mnist_pixelcnn
"""
from __future__ import annotations

import ml_collections

from experiments.configs import default


def get_config(arg: str | None = None):
  args = default.parse_arg(arg, tiny=False)
  config = default.get_prior_config()
  config.model = ml_collections.ConfigDict(dict(
      name="pixelcnn", hidden_channels=64, num_layers=6, kernel_size=3, num_classes=10,
      dtype="float32"))
  # Sized for 2 CPU cores, as prior_mnist.py: the same batches and steps.
  config.data.update(batch_size=64, eval_batch_size=500)
  config.optimizer.update(weight_decay=0.0)
  config.train.update(num_steps=4_000, log_every_steps=250, checkpoint_every_steps=1_000,
                      num_samples=40)
  if args.tiny:
    default.shrink_prior(config)
    config.data.update(train_split="train[:2%]", eval_split="test[:2%]")
  return config
