r"""Transformer prior over the 4x4 token grids of the digits tokenizer (digits.py),
class-conditional on the digit. About 30 s on 2 CPU cores (test NLL about 2.86 nats
per token, 1.03 bits per image dimension, measured before label dropout: the null class
of guidance, config.model.label_dropout_rate=0.1 by default, may move it slightly).

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
  # 1,500 training grids of 16 tokens: a wider, deeper or longer-trained prior memorizes
  # them (4 layers of 128 for 2,000 steps: train 0.92 nats/token, test 4.14).
  config.model.update(name="transformer", num_layers=2, embed_dim=64, num_heads=4,
                      dropout_rate=0.3, num_classes=10)
  config.data.update(batch_size=64, eval_batch_size=100)
  config.optimizer.update(learning_rate=1e-3, warmup_steps=100, weight_decay=0.1)
  config.train.update(num_steps=1_000, log_every_steps=100, checkpoint_every_steps=500,
                      eval_every_steps=250, num_samples=40)
  if args.tiny:
    default.shrink_prior(config)
  return config
