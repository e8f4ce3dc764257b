r"""VQ-VAE on MNIST: 28x28 digits as 7x7 grids of tokens from a 256-code codebook.

Reads the prepared MNIST of ../shared/tfds (relative to the current directory: run from
the repository root), or point --config.data.data_dir elsewhere.

  python -m experiments.train --config=experiments/configs/mnist.py --workdir=/tmp/mnist

`mnist.py:codebook_size=128` gives the K = 128 tokenizer the mnist priors are measured on
(README, "Priors"). Three switches trade reconstruction for grids a prior models better:
  gradient_codebook=true  the plain recipe of the paper: a codebook moved by its gradient
                          loss, no EMA, k-means init or restarts; it uses fewer codes.
  local_encoder=true      1x1 convolutions after the strided ones, so each token sees only
                          its own window of pixels rather than the whole digit; blank
                          patches all get one code.
  downsample_kernel=3     3x3 strided convolutions instead of 4x4: a local token's window
                          shrinks from 10x10 to 7x7 pixels.
All three together give the encoder layout of the Keras VQ-VAE example (two strided 3x3
convolutions, then 1x1 ones) with its gradient codebook:

  python -m experiments.train --workdir=/tmp/mnist128 \
      --config=experiments/configs/mnist.py:codebook_size=128,gradient_codebook=true,local_encoder=true,downsample_kernel=3
"""
from __future__ import annotations

from experiments.configs import default


# get_config's switches and their defaults (fashion_mnist.py takes the same).
SWITCHES = dict(tiny=False, codebook_size=256, gradient_codebook=False, local_encoder=False,
                downsample_kernel=4)


def get_config(arg: str | None = None):
  args = default.parse_arg(arg, **SWITCHES)
  config = default.get_config()
  config.data.update(dataset="mnist", data_dir="../shared/tfds", download=False,
                     batch_size=32)
  config.model.update(image_channels=1, embedding_dim=32, hidden_channels=64,
                      residual_channels=32, num_residual_layers=2, downsample_factor=4,
                      local_encoder=args.local_encoder,
                      encoder_downsample_kernel=args.downsample_kernel)
  config.model.quantizer.update(codebook_size=args.codebook_size, dim=32, ema_decay=0.99,
                                dead_code_threshold=0.5)
  config.optimizer.update(learning_rate=1e-3, warmup_steps=200, schedule="cosine",
                          grad_clip_norm=1.0)
  # Sized for 2 CPU cores: about 10 minutes of training (test MSE / variance about 0.026).
  config.train.update(num_steps=6_000, log_every_steps=500, checkpoint_every_steps=1_000,
                      kmeans_init=True)
  if args.gradient_codebook:
    config.model.quantizer.update(ema_decay=None, dead_code_threshold=0.0)
    config.train.kmeans_init = False
  if args.tiny:
    default.shrink(config)
    config.data.update(train_split="train[:2%]", eval_split="test[:2%]")
  return config
