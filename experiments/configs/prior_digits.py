r"""Transformer prior over the 4x4 token grids of the digits tokenizer (digits.py),
class-conditional on the digit.

  python -m experiments.train --config=experiments/configs/digits.py --workdir=/tmp/digits
  python -m experiments.train_prior --config=experiments/configs/prior_digits.py \
      --config.tokenizer_workdir=/tmp/digits --workdir=/tmp/digits_prior
  python -m experiments.sample --workdir=/tmp/digits_prior --label=3
"""
from __future__ import annotations

from experiments.configs import default


def get_config(arg: str | None = None):
  args = default.parse_arg(arg, tiny=False)
  config = default.get_prior_config()
  config.model.update(name="transformer", num_layers=4, embed_dim=128, num_heads=4,
                      dropout_rate=0.1, num_classes=10)
  # 1,697 training grids of 16 tokens: a small model and few steps, or it memorizes them.
  config.data.update(batch_size=64, eval_batch_size=100)
  config.optimizer.update(learning_rate=1e-3, warmup_steps=100)
  config.train.update(num_steps=2_000, log_every_steps=200, checkpoint_every_steps=500,
                      num_samples=40)
  if args.tiny:
    default.shrink_prior(config)
  return config
