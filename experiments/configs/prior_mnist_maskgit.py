r"""MaskGIT prior (Chang et al. 2022) over the 7x7 token grids of the MNIST tokenizer
(mnist.py), class-conditional on the digit with a null class for classifier-free
guidance: a bidirectional transformer of prior_mnist.py's size, trained on the cosine
mask schedule with label smoothing 0.1, sampled in 8 parallel steps (choice temperature
4.5) instead of 49 sequential ones. Its metrics.json holds the masked-token NLL and
accuracy at mask ratios 0.5 and 0.9 (a MaskGIT prior has no exact likelihood).

  python -m experiments.train_prior --config=experiments/configs/prior_mnist_maskgit.py \
      --config.tokenizer_workdir=/tmp/mnist --workdir=/tmp/mnist_maskgit
  python -m experiments.sample --workdir=/tmp/mnist_maskgit --label=3 --guidance_scale=3 \
      --maskgit_steps=12 --choice_temperature=4.5
"""
from __future__ import annotations

from experiments.configs import default, prior_mnist


def get_config(arg: str | None = None):
  """prior_mnist.py's data, steps and tiny switch with a MaskGIT prior for the model."""
  args = default.parse_arg(arg, tiny=False)
  mnist = prior_mnist.get_config()
  config = default.get_maskgit_prior_config()
  config.model.update(num_layers=4, embed_dim=128, num_heads=4, dropout_rate=0.1,
                      num_classes=10)
  config.data = mnist.data
  config.optimizer = mnist.optimizer
  default.take_schedule(config, mnist)
  return prior_mnist.shrink(config) if args.tiny else config
