r"""MaskGIT prior (Chang et al. 2022) over the 8x8 token grids (K = 512) of the CIFAR-10
tokenizer (cifar10.py), class-conditional on the 10 classes with a null class for
classifier-free guidance; prior_cifar10.py's transformer size, data and schedule, a
bidirectional transformer trained on masked tokens (cosine schedule, label smoothing 0.1)
and sampled in 8 parallel steps instead of 64 sequential ones.

  python -m experiments.train_prior --config=experiments/configs/prior_cifar10_maskgit.py \
      --config.tokenizer_workdir=/tmp/cifar10 --workdir=/tmp/cifar10_maskgit
  python -m experiments.sample --workdir=/tmp/cifar10_maskgit --label=3 --guidance_scale=2

`:cpu` takes prior_cifar10.py's budget for 2 CPU cores (4 layers of 128, 10,000 steps).
"""
from __future__ import annotations

from experiments.configs import default, prior_cifar10


def get_config(arg: str | None = None):
  args = default.parse_arg(arg, tiny=False, cpu=False)
  causal = prior_cifar10.get_config("cpu" if args.cpu else None)
  config = default.get_maskgit_prior_config()
  config.model.update(num_layers=causal.model.num_layers, embed_dim=causal.model.embed_dim,
                      num_heads=causal.model.num_heads, dropout_rate=0.1, num_classes=10)
  config.data = causal.data
  if args.cpu:
    config.optimizer.learning_rate = causal.optimizer.learning_rate
  default.take_schedule(config, causal)
  if args.tiny:
    default.shrink_prior(config)
    config.data.update(train_split="train[:2%]", eval_split="test[:2%]")
  return config
