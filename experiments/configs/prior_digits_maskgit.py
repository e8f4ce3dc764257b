r"""MaskGIT prior (Chang et al. 2022) over the 4x4 token grids of the digits tokenizer
(digits.py), class-conditional on the digit with a null class for classifier-free
guidance: prior_digits.py's transformer size, data and schedule as a bidirectional
transformer trained on masked tokens (cosine schedule, label smoothing 0.1), sampled in 8
parallel steps (choice temperature 4.5) instead of 16 sequential ones. Its metrics.json
holds the masked-token NLL and accuracy at mask ratios 0.5 and 0.9.

  python -m experiments.train --config=experiments/configs/digits.py --workdir=/tmp/digits
  python -m experiments.train_prior --config=experiments/configs/prior_digits_maskgit.py \
      --config.tokenizer_workdir=/tmp/digits --workdir=/tmp/digits_maskgit
  python -m experiments.sample --workdir=/tmp/digits_maskgit --label=3 --steps=4
"""
from __future__ import annotations

from experiments.configs import default, prior_digits


def get_config(arg: str | None = None):
  """prior_digits.py's model size, data, optimizer and steps with a MaskGIT prior."""
  args = default.parse_arg(arg, tiny=False)
  digits = prior_digits.get_config()
  config = default.get_maskgit_prior_config()
  config.model.update(num_layers=digits.model.num_layers, embed_dim=digits.model.embed_dim,
                      num_heads=digits.model.num_heads, dropout_rate=digits.model.dropout_rate,
                      num_classes=digits.model.num_classes)
  config.data = digits.data
  config.optimizer = digits.optimizer
  default.take_schedule(config, digits)
  if args.tiny:
    default.shrink_prior(config)
  return config
