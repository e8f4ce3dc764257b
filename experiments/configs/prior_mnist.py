r"""Transformer prior over the 7x7 token grids of an MNIST tokenizer (mnist.py), class-
conditional on the digit. On the grids of the K = 128 tokenizer with the Keras example's
encoder layout (mnist.py's docstring) it reaches a test NLL of 0.93 nats per token
(README, "Priors"):

  python -m experiments.train --workdir=/tmp/mnist128 \
      --config=experiments/configs/mnist.py:codebook_size=128,gradient_codebook=true,local_encoder=true,downsample_kernel=3
  python -m experiments.train_prior --config=experiments/configs/prior_mnist.py \
      --config.tokenizer_workdir=/tmp/mnist128 --workdir=/tmp/mnist128_prior
"""
from __future__ import annotations

from experiments.configs import default


def get_config(arg: str | None = None):
  args = default.parse_arg(arg, tiny=False)
  config = default.get_prior_config()
  # Sized for 2 CPU cores: about 30 minutes (45 with another job on the cores).
  config.model.update(name="transformer", num_layers=4, embed_dim=128, num_heads=4,
                      dropout_rate=0.1, num_classes=10)
  config.data.update(batch_size=64, eval_batch_size=500)
  config.optimizer.update(learning_rate=1e-3)
  config.train.update(num_steps=8_000, log_every_steps=250, checkpoint_every_steps=1_000,
                      num_samples=40)
  return shrink(config) if args.tiny else config


def shrink(config):
  """The 'tiny' switch of the MNIST priors."""
  default.shrink_prior(config)
  config.data.update(train_split="train[:2%]", eval_split="test[:2%]")
  return config
