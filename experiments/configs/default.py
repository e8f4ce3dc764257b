"""The defaults every config starts from, and the parser of get_config's argument.

A config is chosen as `--config=experiments/configs/NAME.py:ARG`; ARG reaches
get_config(arg) as a short string of comma-separated flags and key=value pairs, e.g.
'tiny' or 'tiny,num_steps=50'. The flag `tiny` shrinks a config for a laptop and for the
tests: a small model, a few steps, small batches, frequent checkpoints. Single fields are
overridden on the command line, e.g. `--config.train.num_steps=1000`; fields that may be
None are typed placeholders, so that they can be overridden too.

Fields (see vqjax.runner: experiment.py, build.py, loop.py; vqjax.train.optimizer):
  seed          data order, augmentation, initialization and every step's keys
  data          TFDS dataset and split names, batch sizes, preprocessing
  model         `name` ('vqvae', 'vqvae2', 'vqgan'), the model's fields, and `quantizer`:
                a layer name of vqjax.runner.build.QUANTIZERS with that layer's fields
  optimizer     vqjax.train.optimizer.make_optimizer's keywords
  train         steps, logging, checkpoint and evaluation intervals, k-means init;
                allow_config_change: resume a workdir after a safe config change
                (vqjax.runner.config_drift says which fields are safe)
  distributed   vqjax.runner.distributed.maybe_initialize's keywords
Adversarial training (get_vqgan_config; any tokenizer through add_adversarial_sections)
adds discriminator, discriminator_optimizer, gan and lpips (vqjax.runner.gan_experiment).
"""
from __future__ import annotations

import ml_collections
from ml_collections.config_dict import placeholder


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The defaults: a VQ-VAE of the paper's shape on 32x32 RGB images (cifar10.py)."""
  args = parse_arg(arg, tiny=False)
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.data = ml_collections.ConfigDict(dict(
      dataset="cifar10", data_dir=placeholder(str), download=False, train_split="train",
      eval_split="test", image_size=placeholder(int), value_range=(-1.0, 1.0),
      random_flip=False, batch_size=128, eval_batch_size=256,
      shuffle_buffer_size=placeholder(int), variance_examples=10_000))
  config.model = ml_collections.ConfigDict(dict(
      name="vqvae", image_channels=3, embedding_dim=64, hidden_channels=256,
      residual_channels=256, num_residual_layers=2, downsample_factor=4, dtype="float32",
      quantizer=dict(name="vq", codebook_size=512, dim=64, beta=0.25,
                     ema_decay=placeholder(float), dead_code_threshold=0.0)))
  config.optimizer = ml_collections.ConfigDict(dict(
      name="adam", learning_rate=2e-4, warmup_steps=0, schedule="constant",
      end_learning_rate_fraction=0.0, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0,
      grad_clip_norm=placeholder(float)))
  config.train = ml_collections.ConfigDict(dict(
      num_steps=250_000, log_every_steps=100, checkpoint_every_steps=5_000,
      keep_checkpoints=3, eval_every_steps=0, kmeans_init=False,
      kmeans_iterations=10, grid_examples=16, quantizer_loss_weights=placeholder(dict),
      allow_config_change=False))
  config.distributed = ml_collections.ConfigDict(dict(
      initialize="auto", coordinator_address=placeholder(str), num_processes=placeholder(int),
      process_id=placeholder(int)))
  return shrink(config) if args.tiny else config


def get_vqgan_config() -> ml_collections.ConfigDict:
  """The defaults of a VQGAN (vqjax.runner.gan_experiment): taming-transformers' f16
  ImageNet model (vqgan_imagenet256_f16.py) with its loss, discriminator and optimizers."""
  config = get_config()
  config.data.update(value_range=(-1.0, 1.0), random_flip=True)
  config.model = ml_collections.ConfigDict(dict(
      name="vqgan", image_channels=3, embedding_dim=256, channels=128,
      channel_multipliers=(1, 1, 2, 2, 4), num_res_blocks=2, attention_resolutions=(16,),
      z_channels=256, dropout_rate=0.0, dtype="float32",
      quantizer=dict(name="vq", codebook_size=1024, dim=256, beta=0.25,
                     ema_decay=placeholder(float), dead_code_threshold=0.0)))
  config.optimizer.update(name="adam", learning_rate=4.5e-6 * 64, b1=0.5, b2=0.9,
                          schedule="constant")
  return add_adversarial_sections(config)


def add_adversarial_sections(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """config with the sections that switch on adversarial training (any tokenizer: VQGAN,
  VQ-VAE): a PatchGAN discriminator, its optimizer (a copy of config.optimizer), the GAN
  loss settings (taming-transformers') and LPIPS."""
  config.discriminator = ml_collections.ConfigDict(dict(
      name="patchgan", channels=64, num_layers=3, norm="batch", dtype="float32"))
  config.discriminator_optimizer = ml_collections.ConfigDict(config.optimizer.to_dict())
  config.gan = ml_collections.ConfigDict(dict(
      reconstruction_loss="l1", perceptual_weight=1.0, gan_loss="hinge",
      discriminator_weight=0.8, discriminator_start=0, adaptive_weight=True,
      max_adaptive_weight=1e4, lecam_weight=0.0, lecam_decay=0.99, r1_gamma=0.0,
      generator_ema_decay=0.0))
  config.lpips = ml_collections.ConfigDict(dict(weights=placeholder(str),
                                                resize_to=placeholder(int)))
  return config


def shrink_vqgan(config: ml_collections.ConfigDict, *, num_steps: int = 20,
                 batch_size: int = 16) -> ml_collections.ConfigDict:
  """The 'tiny' switch of a VQGAN config: a test-sized generator and discriminator with
  the config's downsampling factor, a few small-batch steps with the GAN on after half."""
  factor_levels = len(config.model.channel_multipliers)
  config.model.update(channels=16, channel_multipliers=(1,) + (2,) * (factor_levels - 1),
                      num_res_blocks=1, attention_resolutions=(), z_channels=8,
                      embedding_dim=8)
  config.model.quantizer.update(codebook_size=32, dim=8)
  config.discriminator.update(channels=8,
                              num_layers=min(config.discriminator.num_layers, 2))
  config.data.update(batch_size=batch_size, eval_batch_size=2 * batch_size,
                     variance_examples=1_000)
  config.optimizer.update(learning_rate=1e-3, warmup_steps=0)
  config.discriminator_optimizer.update(learning_rate=1e-3, warmup_steps=0)
  config.gan.update(discriminator_start=num_steps // 2)
  config.train.update(num_steps=num_steps, log_every_steps=5, checkpoint_every_steps=10,
                      eval_every_steps=0, grid_examples=8)
  return config


def get_prior_config() -> ml_collections.ConfigDict:
  """The defaults of a prior (vqjax.runner.prior_task): a transformer over the token grids
  of the tokenizer trained in tokenizer_workdir; model.name 'transformer' or 'pixelcnn'
  with that model's fields (vqjax.runner.build.build_prior), num_classes 0: unconditional.
  level: None for a single-grid tokenizer; 'top' or 'bottom' names a VQ-VAE-2's grid (the
  bottom prior is conditioned on the top grid); top_prior_workdir: a bottom prior's top
  prior, whose sampled top grids its samples are decoded over (unset: the evaluation
  split's top grids). train.fid_samples: the samples of experiments.evaluate --fid's
  generation FID.

  Classifier-free guidance: model.label_dropout_rate (0.1) drops a class-conditional
  prior's labels to a null class in training (nothing for num_classes 0);
  train.guidance_scale (None: unguided) and guidance_ramp guide samples.png.
  MaskGIT priors (model.name 'maskgit', get_maskgit_prior_config) add their own fields."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.tokenizer_workdir = placeholder(str)
  config.level = placeholder(str)
  config.top_prior_workdir = placeholder(str)
  config.data = ml_collections.ConfigDict(dict(
      train_split="train", eval_split="test", batch_size=64, eval_batch_size=256))
  config.model = ml_collections.ConfigDict(dict(
      name="transformer", num_layers=4, embed_dim=256, num_heads=8, mlp_ratio=4,
      dropout_rate=0.1, num_classes=0, label_dropout_rate=0.1, dtype="float32"))
  config.optimizer = ml_collections.ConfigDict(dict(
      name="adamw", learning_rate=3e-4, warmup_steps=200, schedule="cosine",
      end_learning_rate_fraction=0.05, b1=0.9, b2=0.95, eps=1e-8, weight_decay=0.01,
      grad_clip_norm=1.0))
  config.train = ml_collections.ConfigDict(dict(
      num_steps=5_000, log_every_steps=250, checkpoint_every_steps=1_000, keep_checkpoints=3,
      eval_every_steps=0, num_samples=32, fid_samples=10_000, temperature=1.0,
      top_k=placeholder(int), top_p=placeholder(float), guidance_scale=placeholder(float),
      guidance_ramp=False, label_smoothing=0.0, allow_config_change=False))
  config.distributed = ml_collections.ConfigDict(dict(
      initialize="auto", coordinator_address=placeholder(str), num_processes=placeholder(int),
      process_id=placeholder(int)))
  return config


def get_maskgit_prior_config() -> ml_collections.ConfigDict:
  """The defaults of a MaskGIT prior: maskgit's bidirectional transformer (cosine mask
  schedule, label smoothing 0.1) sampled in 8 parallel steps with choice temperature 4.5,
  evaluated by its masked-token NLL at mask ratios 0.5 and 0.9."""
  config = get_prior_config()
  config.model = ml_collections.ConfigDict(dict(
      name="maskgit", num_layers=4, embed_dim=256, num_heads=8, mlp_ratio=4,
      dropout_rate=0.1, num_classes=0, label_dropout_rate=0.1, mask_schedule="cosine",
      dtype="float32"))
  config.train.update(label_smoothing=0.1, maskgit_steps=8, choice_temperature=4.5,
                      eval_mask_ratios=(0.5, 0.9))
  return config


# The training schedule a MaskGIT config takes from its causal sibling (take_schedule).
SCHEDULE_FIELDS = ("num_steps", "log_every_steps", "checkpoint_every_steps",
                   "eval_every_steps", "num_samples")


def take_schedule(config: ml_collections.ConfigDict,
                  source: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Sets config.train's SCHEDULE_FIELDS to source.train's (a MaskGIT prior trained on its
  causal sibling's steps); returns config."""
  config.train.update({name: source.train[name] for name in SCHEDULE_FIELDS})
  return config


def shrink_prior(config: ml_collections.ConfigDict, *, num_steps: int = 20,
                 batch_size: int = 32) -> ml_collections.ConfigDict:
  """The 'tiny' switch of a prior config: a test-sized model, a few small-batch steps."""
  if config.model.name in ("transformer", "maskgit"):
    config.model.update(num_layers=2, embed_dim=32, num_heads=4)
  else:
    config.model.update(hidden_channels=16, num_layers=2)
  config.data.update(batch_size=batch_size, eval_batch_size=2 * batch_size)
  config.optimizer.update(learning_rate=1e-3, warmup_steps=0)
  config.train.update(num_steps=num_steps, log_every_steps=5, checkpoint_every_steps=10,
                      eval_every_steps=0, num_samples=8, fid_samples=64)
  return config


def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
  """get_config's argument as a ConfigDict of `defaults` with what arg sets.

  'tiny' sets a bool default to True; 'key=value' converts value to the default's type.
  """
  values = dict(defaults)
  for part in filter(None, (arg or "").split(",")):
    key, has_value, value = part.partition("=")
    if key not in defaults:
      raise ValueError(f"unknown config argument {key!r} in {arg!r}; this config takes "
                       f"{', '.join(sorted(defaults)) or 'no arguments'}")
    kind = type(defaults[key])
    if not has_value:
      if kind is not bool:
        raise ValueError(f"config argument {key!r} needs a value: {key}=...")
      values[key] = True
    elif kind is bool:
      if value.lower() not in ("true", "false", "1", "0"):
        raise ValueError(f"config argument {key}={value!r} is not a bool; use true or false")
      values[key] = value.lower() in ("true", "1")
    else:
      values[key] = kind(value)
  return ml_collections.ConfigDict(values)


def shrink(config: ml_collections.ConfigDict, *, num_steps: int = 20,
           batch_size: int = 32) -> ml_collections.ConfigDict:
  """The 'tiny' switch: a test-sized model (as vqjax.models.TinyVQVAE), a few steps on
  small batches, frequent logs and checkpoints, the data as configured."""
  config.model.update(embedding_dim=8, hidden_channels=16, residual_channels=8,
                      num_residual_layers=1)
  config.model.quantizer.update(codebook_size=32, dim=8)
  config.data.update(batch_size=batch_size, eval_batch_size=2 * batch_size,
                     variance_examples=1_000)
  config.optimizer.update(learning_rate=1e-3, warmup_steps=0)
  config.train.update(num_steps=num_steps, log_every_steps=5, checkpoint_every_steps=10,
                      eval_every_steps=0, grid_examples=8)
  return config
