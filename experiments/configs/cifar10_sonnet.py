r"""The Sonnet / Haiku VQ-VAE example on CIFAR-10, as an anchor: 32x32 images as 8x8 grids,
128 hidden units, 2 residual layers of 32, K = 512 codes of dimension 64 kept by EMA
(decay 0.99), beta 0.25, Adam at 3e-4 with batch 32 for 10,000 steps. The example reports
normalized reconstruction error (MSE / data variance) 0.056 and perplexity 326 on its
training batches (sonnet/examples/vqvae_example.ipynb).

  python -m experiments.train --config=experiments/configs/cifar10_sonnet.py --workdir=DIR

`:jpeg_copy` reads ../shared/tfds's cifar10_jpeg (CIFAR-10's images decoded from JPEG
quality-75 copies; figures on it are "CIFAR-10 (JPEG copy)") instead of TFDS's cifar10;
`:quantizer=NAME` swaps the quantizer for a row of experiments/quantizer_table.py (the rows
are in QUANTIZER_ROWS: about 2^10 codes each).
"""
from __future__ import annotations

from experiments.configs import default

# The quantizer table's rows: a label, the pre-quantizer width (embedding_dim), the model's
# quantizer section, whether the codebook starts from k-means of the first batch, and
# optionally the weights of its loss terms (config.train.quantizer_loss_weights).
QUANTIZER_ROWS = {
    "vq": dict(
        label="VQ, codebook learned by its loss", embedding_dim=64, kmeans_init=False,
        quantizer=dict(name="vq", codebook_size=1024, dim=64, beta=0.25, ema_decay=None,
                       dead_code_threshold=0.0)),
    "vq_ema": dict(
        label="VQ-EMA (0.99), k-means init, dead-code restarts", embedding_dim=64,
        kmeans_init=True,
        quantizer=dict(name="vq", codebook_size=1024, dim=64, beta=0.25, ema_decay=0.99,
                       dead_code_threshold=1.0)),
    "vq_rotation": dict(
        label="VQ, rotation trick", embedding_dim=64, kmeans_init=False,
        quantizer=dict(name="vq", codebook_size=1024, dim=64, beta=0.25, ema_decay=None,
                       dead_code_threshold=0.0, estimator="rotation")),
    "cosine_dim8": dict(
        label="cosine codes of dim 8 (ViT-VQGAN)", embedding_dim=8, kmeans_init=False,
        quantizer=dict(name="vq", codebook_size=1024, dim=8, beta=0.25, ema_decay=None,
                       dead_code_threshold=0.0, metric="cosine")),
    "fsq": dict(
        label="FSQ, levels (8, 5, 5, 5): 1000 codes", embedding_dim=4, kmeans_init=False,
        quantizer=dict(name="fsq", levels=(8, 5, 5, 5))),
    # MAGVIT-v2's and vector-quantize-pytorch's weights: entropy 0.1, commitment 0.25. At
    # weight 1 the entropy term wins over the reconstruction (test MSE / variance 0.186).
    "lfq": dict(
        label="LFQ, 10 bits (entropy weight 0.1, commitment 0.25)", embedding_dim=10,
        kmeans_init=False, quantizer=dict(name="lfq", dim=10),
        loss_weights=dict(entropy_loss=0.1, commitment_loss=0.25)),
    "residual_2x32": dict(
        label="residual VQ, 2 levels of 32 codes (1024 pairs)", embedding_dim=64,
        kmeans_init=False,
        quantizer=dict(name="residual", levels=2, codebook_size=32, dim=64, beta=0.25,
                       ema_decay=None, dead_code_threshold=0.0)),
}


def get_config(arg: str | None = None):
  args = default.parse_arg(arg, tiny=False, jpeg_copy=False, quantizer="")
  config = default.get_config()
  config.data.update(dataset="cifar10", download=True, batch_size=32, eval_batch_size=200)
  if args.jpeg_copy:
    config.data.update(dataset="cifar10_jpeg", data_dir="../shared/tfds", download=False)
  config.model.update(embedding_dim=64, hidden_channels=128, residual_channels=32,
                      num_residual_layers=2, downsample_factor=4)
  config.model.quantizer.update(codebook_size=512, dim=64, beta=0.25, ema_decay=0.99,
                                dead_code_threshold=0.0)
  config.optimizer.update(learning_rate=3e-4)
  config.train.update(num_steps=10_000, log_every_steps=500, checkpoint_every_steps=1_000)
  if args.tiny:
    default.shrink(config)
    config.data.update(train_split="train[:2%]", eval_split="test[:2%]")
  if args.quantizer:  # after the shrink, which would give FSQ or LFQ a codebook size
    _use_row(config, args.quantizer)
  return config


def _use_row(config, name: str) -> None:
  if name not in QUANTIZER_ROWS:
    raise ValueError(f"unknown quantizer row {name!r}; choose one of "
                     f"{', '.join(QUANTIZER_ROWS)}")
  row = QUANTIZER_ROWS[name]
  config.model.embedding_dim = row["embedding_dim"]
  config.model.quantizer = dict(row["quantizer"])
  config.train.kmeans_init = row["kmeans_init"]
  if "loss_weights" in row:
    config.train.quantizer_loss_weights = dict(row["loss_weights"])
