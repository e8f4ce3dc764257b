"""Every config builds, full-size and tiny, and its model traces on the dataset's shape;
prior configs (prior_*.py) build their prior over the tokenizer's grid and trace."""
import importlib
import pathlib

import jax
import jax.numpy as jnp
import pytest

from experiments.configs import default
from vqjax.models import tokenizers
from vqjax.runner import build, experiment

# from_workdir.py reads a workdir's config.json: tested in test_taming_workdir.py.
_ALL = sorted(p.stem for p in (pathlib.Path(__file__).parents[1] / "experiments" /
                               "configs").glob("*.py") if p.stem not in ("__init__",
                                                                         "from_workdir"))
CONFIGS = [name for name in _ALL if not name.startswith("prior_")]
PRIOR_CONFIGS = [name for name in _ALL if name.startswith("prior_")]
# The tokenizer config each prior reads the grids of.
PRIOR_TOKENIZERS = {"prior_digits": "digits", "prior_mnist": "mnist",
                    "prior_mnist_pixelcnn": "mnist", "prior_cifar10": "cifar10",
                    "prior_mnist_maskgit": "mnist", "prior_cifar10_maskgit": "cifar10",
                    "prior_vqvae2_top": "vqvae2_imagenet256",
                    "prior_vqvae2_bottom": "vqvae2_imagenet256",
                    "prior_digits_maskgit": "digits",
                    "prior_imagenet256_maskgit": "vqgan_imagenet256_f16"}
# Stored image shapes of the datasets the configs name (image_size overrides the side).
SHAPES = {"vqjax_digits": (8, 8, 1), "mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1),
          "cifar10": (32, 32, 3), "cifar10_jpeg": (32, 32, 3), "imagenet2012": (None, None, 3)}
TOKEN_GRIDS = {"digits": [(4, 4)], "mnist": [(7, 7)], "fashion_mnist": [(7, 7)],
               "cifar10": [(8, 8)], "cifar10_sonnet": [(8, 8)], "default": [(8, 8)], "imagenet128": [(32, 32)],
               "vqvae2_imagenet256": [(32, 32), (64, 64)], "vqgan_digits": [(4, 4)],
               "vqgan_mnist": [(7, 7)], "vqgan_imagenet256_f16": [(16, 16)],
               "vqgan_imagenet256_f8": [(32, 32)]}
# Tiny ImageNet VQGANs read 32x32 images.
TINY_TOKEN_GRIDS = {"vqgan_imagenet256_f16": [(2, 2)], "vqgan_imagenet256_f8": [(4, 4)]}


def _token_grids(config):
  height, width, channels = SHAPES[config.data.dataset]
  if config.data.image_size is not None:
    height = width = config.data.image_size
  model = build.build_model(config.model, axis_name=None)
  images = jax.ShapeDtypeStruct((2, height, width, channels), jnp.float32)

  def init_and_apply(images):
    variables = model.init(jax.random.key(0), images, train=False)
    return tokenizers.token_grids(model.apply(variables, images, train=False))

  return sorted(grid.shape[1:3] for grid in jax.eval_shape(init_and_apply, images).values())


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("arg", [None, "tiny"])
def test_config_builds_its_model(name, arg):
  config = importlib.import_module(f"experiments.configs.{name}").get_config(arg)
  expected = TINY_TOKEN_GRIDS.get(name, TOKEN_GRIDS[name]) if arg else TOKEN_GRIDS[name]
  assert _token_grids(config) == expected
  experiment.check_train_config(config.train)  # what a run checks before it starts
  experiment.check_data_config(config.data)
  experiment.build_optimizer(config)
  if arg == "tiny":
    width = config.model.get("hidden_channels", config.model.get("channels"))
    assert config.train.num_steps <= 20 and width <= 16


@pytest.mark.parametrize("name", PRIOR_CONFIGS)
@pytest.mark.parametrize("arg", [None, "tiny"])
def test_prior_config_builds_its_prior(name, arg):
  config = importlib.import_module(f"experiments.configs.{name}").get_config(arg)
  tokenizer = importlib.import_module(f"experiments.configs.{PRIOR_TOKENIZERS[name]}")
  tokenizer_grids = _token_grids(tokenizer.get_config(arg))  # VQ-VAE-2: [top, bottom]
  codebook_size = tokenizer.get_config(arg).model.quantizer.codebook_size
  assert (len(tokenizer_grids) == 2) == (config.level is not None)
  grid_shape = tokenizer_grids[config.level == "bottom"]
  bottom = config.level == "bottom"
  prior = build.build_prior(config.model, codebook_size=codebook_size, grid_shape=grid_shape,
                            condition_codebook_size=codebook_size if bottom else 0)
  experiment.check_train_config(config.train)
  experiment.build_optimizer(config)
  inputs = {}
  if config.model.num_classes:
    inputs["labels"] = jax.ShapeDtypeStruct((2,), jnp.int32)
  if bottom:
    inputs["condition"] = jax.ShapeDtypeStruct((2, *tokenizer_grids[0]), jnp.int32)
  grids = jax.ShapeDtypeStruct((2, *grid_shape), jnp.int32)
  logits = jax.eval_shape(
      lambda grids, **inputs: prior.apply(prior.init(jax.random.key(0), grids, train=False,
                                                     **inputs), grids, train=False, **inputs),
      grids, **inputs)
  assert logits.shape == (2, grid_shape[0] * grid_shape[1], codebook_size)
  assert config.model.name in build.PRIORS
  if arg == "tiny":
    assert config.train.num_steps <= 20


def test_the_paper_configs():
  cifar = importlib.import_module("experiments.configs.cifar10").get_config()
  assert (cifar.model.hidden_channels, cifar.model.quantizer.codebook_size,
          cifar.model.quantizer.dim, cifar.data.batch_size, cifar.optimizer.learning_rate,
          cifar.train.num_steps) == (256, 512, 64, 128, 2e-4, 250_000)
  mnist = importlib.import_module("experiments.configs.mnist").get_config()
  assert mnist.data.data_dir == "../shared/tfds" and mnist.model.quantizer.codebook_size <= 512
  digits = importlib.import_module("experiments.configs.digits").get_config()
  assert digits.data.dataset == "vqjax_digits" and digits.data.download


def test_the_imagenet_maskgit_config_has_maskgits_sizes():
  config = importlib.import_module("experiments.configs.prior_imagenet256_maskgit").get_config()
  model = config.model
  assert (model.name, model.num_layers, model.embed_dim, model.num_heads, model.mlp_ratio,
          model.num_classes, model.label_dropout_rate) == ("maskgit", 24, 768, 16, 4, 1000, 0.1)
  assert (config.data.batch_size, config.optimizer.learning_rate, config.optimizer.b2,
          config.train.label_smoothing, config.train.maskgit_steps,
          config.train.num_steps) == (256, 1e-4, 0.96, 0.1, 8, 300 * 1_281_167 // 256)
  tokenizer = importlib.import_module("experiments.configs.vqgan_imagenet256_f16").get_config()
  assert _token_grids(tokenizer) == [(16, 16)]
  prior = build.build_prior(model, codebook_size=tokenizer.model.quantizer.codebook_size,
                            grid_shape=(16, 16), condition_codebook_size=0)
  grids, labels = (jax.ShapeDtypeStruct((2, 16, 16), jnp.int32),
                   jax.ShapeDtypeStruct((2,), jnp.int32))
  variables = jax.eval_shape(
      lambda grids, labels: prior.init(jax.random.key(0), grids, labels=labels, train=False),
      grids, labels)
  assert sum(leaf.size for leaf in jax.tree.leaves(variables)) == 172_480_000


@pytest.mark.parametrize("local,kernel", [(False, 4), (True, 4), (True, 3)])
def test_the_mnist_tokenizers_of_the_priors(local, kernel):
  arg = (f"codebook_size=128,gradient_codebook=true,local_encoder={str(local).lower()},"
         f"downsample_kernel={kernel}")
  config = importlib.import_module("experiments.configs.mnist").get_config(arg)
  assert (config.model.quantizer.codebook_size, config.model.quantizer.ema_decay,
          config.train.kmeans_init, config.model.local_encoder) == (128, None, False, local)
  assert _token_grids(config) == [(7, 7)]
  model = build.build_model(config.model, axis_name=None)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False),
                             jax.ShapeDtypeStruct((1, 28, 28, 1), jnp.float32))
  encoder = variables["params"]["encoder"]
  assert ("conv1x1" in encoder) == local
  assert encoder["down0"]["kernel"].shape[:2] == (kernel, kernel)


# A value other than the default for every switch of mnist.py.
_SWITCH_VALUES = {"tiny": "tiny", "codebook_size": "codebook_size=128",
                  "gradient_codebook": "gradient_codebook=true",
                  "local_encoder": "local_encoder=true", "downsample_kernel": "downsample_kernel=3"}


@pytest.mark.parametrize("switch", sorted(_SWITCH_VALUES))
def test_fashion_mnist_takes_every_switch_of_mnist(switch):
  mnist = importlib.import_module("experiments.configs.mnist")
  assert set(_SWITCH_VALUES) == set(mnist.SWITCHES)  # a new switch gets a value here
  arg = _SWITCH_VALUES[switch]
  fashion = importlib.import_module("experiments.configs.fashion_mnist").get_config(arg)
  expected = mnist.get_config(arg)
  expected.data.update(dataset="fashion_mnist", data_dir=None, download=True)
  assert fashion.to_dict() == expected.to_dict()
  assert _token_grids(fashion) == [(7, 7)]


def test_parse_arg():
  assert default.parse_arg(None, tiny=False).tiny is False
  assert default.parse_arg("tiny", tiny=False).tiny is True
  parsed = default.parse_arg("tiny=false,steps=5", tiny=True, steps=1)
  assert (parsed.tiny, parsed.steps) == (False, 5)
  with pytest.raises(ValueError, match="unknown config argument 'runlocal'.*takes tiny"):
    default.parse_arg("runlocal", tiny=False)
  with pytest.raises(ValueError, match="needs a value"):
    default.parse_arg("steps", steps=1)


@pytest.mark.parametrize("row", sorted(importlib.import_module(
    "experiments.configs.cifar10_sonnet").QUANTIZER_ROWS))
def test_the_quantizer_table_rows(row):
  """Each row of experiments/quantizer_table.py: the Sonnet-sized model on the CIFAR-10
  JPEG copy, an 8x8 grid, about 2^10 codes."""
  sonnet = importlib.import_module("experiments.configs.cifar10_sonnet")
  config = sonnet.get_config(f"jpeg_copy,quantizer={row}")
  assert (config.data.dataset, config.data.data_dir) == ("cifar10_jpeg", "../shared/tfds")
  assert _token_grids(config) == [(8, 8)]
  num_codes = build.build_quantizer(config.model.quantizer).num_codes
  levels = config.model.quantizer.get("levels", 1) if row.startswith("residual") else 1
  assert 1000 <= num_codes ** levels <= 1024
  assert (config.model.hidden_channels, config.model.residual_channels,
          config.data.batch_size, config.train.num_steps) == (128, 32, 32, 10_000)
  weights = config.train.quantizer_loss_weights
  assert weights == ({"entropy_loss": 0.1, "commitment_loss": 0.25} if row == "lfq" else None)
  tiny = sonnet.get_config(f"tiny,quantizer={row}")  # the shrink keeps the row's quantizer
  assert tiny.model.quantizer == config.model.quantizer and tiny.model.hidden_channels == 16
  assert _token_grids(tiny) == [(8, 8)]
  with pytest.raises(ValueError, match="unknown quantizer row 'nope'; choose one of vq"):
    sonnet.get_config("quantizer=nope")
