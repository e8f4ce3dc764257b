r"""VQ-VAE on MNIST: 28x28 digits as 7x7 grids of tokens from a 256-code codebook.

Reads the prepared MNIST of ../shared/tfds (relative to the current directory: run from
the repository root), or point --config.data.data_dir elsewhere.

  python -m experiments.train --config=experiments/configs/mnist.py --workdir=/tmp/mnist
"""
from __future__ import annotations

from experiments.configs import default


def get_config(arg: str | None = None):
  args = default.parse_arg(arg, tiny=False)
  config = default.get_config()
  config.data.update(dataset="mnist", data_dir="../shared/tfds", download=False,
                     batch_size=128)
  config.model.update(image_channels=1, embedding_dim=32, hidden_channels=128,
                      residual_channels=32, num_residual_layers=2, downsample_factor=4)
  config.model.quantizer.update(codebook_size=256, dim=32, ema_decay=0.99,
                                dead_code_threshold=0.5)
  config.optimizer.update(learning_rate=3e-4, warmup_steps=500, schedule="cosine",
                          grad_clip_norm=1.0)
  config.train.update(num_steps=20_000, log_every_steps=200, checkpoint_every_steps=2_000,
                      kmeans_init=True)
  if args.tiny:
    default.shrink(config)
    config.data.update(train_split="train[:2%]", eval_split="test[:2%]")
  return config
