r"""VQ-VAE-2 bottom prior: a transformer over the 64x64 bottom token grids (K = 512) of
the ImageNet 256x256 tokenizer (vqvae2_imagenet256.py), conditioned on the image's 32x32
top grid (each bottom position adds the embedding of the top code above it) and on the
class.

The paper's bottom prior is a PixelCNN without attention, conditioned on the top codes.
Self-attention over 4,096 positions costs memory quadratic in them (the attention
weights of every layer are kept for the backward pass), so this transformer is shallower
and narrower than the top prior (8 layers of width 256, 7M parameters) and takes 2 grids
per device (batch 16 on 8 devices): about 27 GiB per device by XLA's memory analysis of
the compiled train step (CPU backend, a rough guide), linear in the per-device batch.

  python -m experiments.train_prior --config=experiments/configs/prior_vqvae2_bottom.py \
      --config.tokenizer_workdir=/tmp/vqvae2 --workdir=/tmp/vqvae2_bottom \
      --config.top_prior_workdir=/tmp/vqvae2_top
  python -m experiments.sample --workdir=/tmp/vqvae2_bottom \
      --top_prior_workdir=/tmp/vqvae2_top --label=207

A MaskGIT bottom prior: --config=experiments/configs/prior_vqvae2_bottom.py:maskgit (its
64x64 grid decoded in 8 parallel steps rather than 4,096 sequential ones).

With top_prior_workdir (set here or passed to experiments.sample) the samples' top grids
come from that top prior; without it (the default, so the two priors can train at once)
the bottom prior's samples.png is decoded over the evaluation split's top grids.
"""
from __future__ import annotations

from experiments.configs import default, prior_vqvae2_top


def get_config(arg: str | None = None):
  """The top prior's config for the bottom grids: a smaller transformer, smaller batches;
  `:maskgit` makes it a MaskGIT bottom prior (the same size, the top grid added to every
  position's input as the transformer takes it), sampled in parallel steps."""
  args = default.parse_arg(arg, tiny=False, maskgit=False)
  config = prior_vqvae2_top.get_config()
  config.level = "bottom"
  config.model.update(num_layers=8, embed_dim=256)
  if args.maskgit:
    maskgit = default.get_maskgit_prior_config()
    maskgit.model.update({name: config.model[name] for name in (
        "num_layers", "embed_dim", "num_heads", "dropout_rate", "num_classes", "dtype")})
    config.model = maskgit.model
    config.train.update({name: maskgit.train[name] for name in (
        "label_smoothing", "maskgit_steps", "choice_temperature", "eval_mask_ratios")})
  config.data.update(batch_size=16, eval_batch_size=64)
  return prior_vqvae2_top.shrink(config) if args.tiny else config
