r"""VQ-VAE on the built-in digits (scikit-learn's 8x8 handwritten digits): no network.

Each 8x8 digit becomes a 4x4 grid of tokens (downsample factor 2) from a 128-code EMA
codebook, fit by k-means to the first batch, with dead codes restarted from the batch.
About a minute and a half on 2 CPU cores (test MSE / data variance about 0.025).

  python -m experiments.train --config=experiments/configs/digits.py --workdir=/tmp/digits
  python -m experiments.train --config=experiments/configs/digits.py:tiny --workdir=/tmp/t
"""
from __future__ import annotations

from experiments.configs import default


def get_config(arg: str | None = None):
  args = default.parse_arg(arg, tiny=False)
  config = default.get_config()
  config.data.update(dataset="vqjax_digits", download=True, batch_size=128,
                     eval_batch_size=128, variance_examples=1_500)
  config.model.update(image_channels=1, embedding_dim=16, hidden_channels=32,
                      residual_channels=16, num_residual_layers=2, downsample_factor=2)
  # A code is dead when it gets under 1/64 of its fair share of the batch's 2,048 tokens.
  config.model.quantizer.update(codebook_size=128, dim=16, ema_decay=0.95,
                                dead_code_threshold=0.25)
  config.optimizer.update(learning_rate=1e-3, warmup_steps=100, schedule="cosine",
                          end_learning_rate_fraction=0.05, grad_clip_norm=1.0)
  config.train.update(num_steps=3_000, log_every_steps=250, checkpoint_every_steps=1_000,
                      kmeans_init=True, grid_examples=32)
  if args.tiny:
    default.shrink(config)
  return config
