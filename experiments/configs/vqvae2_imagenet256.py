r"""VQ-VAE-2 on ImageNet at 256x256 (Razavi et al. 2019, appendix table of
hyper-parameters): top tokens 32x32 and bottom tokens 64x64, two EMA codebooks (decay
0.99) of K = 512 codes of dimension 64, beta 0.25, 128 hidden and 64 residual units in 2
residual layers, Adam at 3e-4 with batch 128.

ImageNet must be prepared in TFDS's data_dir by hand (it cannot be downloaded).

  python -m experiments.train --config=experiments/configs/vqvae2_imagenet256.py --workdir=DIR
"""
from __future__ import annotations

from experiments.configs import default


def get_config(arg: str | None = None):
  args = default.parse_arg(arg, tiny=False)
  config = default.get_config()
  config.data.update(dataset="imagenet2012", image_size=256, eval_split="validation",
                     download=False, shuffle_buffer_size=10_000)
  config.model.update(name="vqvae2", hidden_channels=128, residual_channels=64,
                      num_residual_layers=2, downsample_factor=4)
  config.model.quantizer.update(ema_decay=0.99)
  config.optimizer.update(learning_rate=3e-4)
  config.train.update(num_steps=2_207_444, checkpoint_every_steps=10_000,
                      log_every_steps=500)
  if args.tiny:
    default.shrink(config)
  return config
