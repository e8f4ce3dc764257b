r"""Transformer prior over the 8x8 token grids (K = 512) of the CIFAR-10 tokenizer
(cifar10.py), class-conditional on the 10 classes.

The VQ-VAE paper fits a PixelCNN to these grids; a transformer is offered here because it
samples with a key-value cache. For the paper's setting, swap the model as
prior_mnist_pixelcnn.py does: config.model = dict(name='pixelcnn', hidden_channels=...).

  python -m experiments.train --config=experiments/configs/cifar10.py --workdir=/tmp/cifar10
  python -m experiments.train_prior --config=experiments/configs/prior_cifar10.py \
      --config.tokenizer_workdir=/tmp/cifar10 --workdir=/tmp/cifar10_prior
  python -m experiments.sample --workdir=/tmp/cifar10_prior --label=3

The model above is sized for an accelerator (50,000 steps of 128). `:cpu` is a budget for
2 CPU cores: prior_mnist.py's transformer (4 layers of 128, 4 heads) and training (batch
64, lr 1e-3), 10,000 steps.
"""
from __future__ import annotations

from experiments.configs import default


def get_config(arg: str | None = None):
  args = default.parse_arg(arg, tiny=False, cpu=False)
  config = default.get_prior_config()
  config.model.update(name="transformer", num_layers=8, embed_dim=256, num_heads=8,
                      dropout_rate=0.1, num_classes=10)
  config.data.update(batch_size=128, eval_batch_size=500)
  config.train.update(num_steps=50_000, log_every_steps=500, checkpoint_every_steps=5_000,
                      eval_every_steps=10_000, num_samples=40)
  if args.cpu:
    use_cpu_budget(config)
  if args.tiny:
    default.shrink_prior(config)
    config.data.update(train_split="train[:2%]", eval_split="test[:2%]")
  return config


def use_cpu_budget(config):
  """The ':cpu' switch: a transformer of prior_mnist.py's size, trained as it is."""
  config.model.update(num_layers=4, embed_dim=128, num_heads=4)
  config.data.update(batch_size=64)
  config.optimizer.update(learning_rate=1e-3)
  config.train.update(num_steps=10_000, log_every_steps=250, checkpoint_every_steps=1_000,
                      eval_every_steps=0)
  return config
