"""Every config builds, full-size and tiny, and its model traces on the dataset's shape."""
import importlib
import pathlib

import jax
import jax.numpy as jnp
import pytest

from experiments.configs import default
from vqjax.train import build

CONFIGS = sorted(p.stem for p in (pathlib.Path(__file__).parents[1] / "experiments" /
                                  "configs").glob("*.py") if p.stem != "__init__")
# Stored image shapes of the datasets the configs name (image_size overrides the side).
SHAPES = {"vqjax_digits": (8, 8, 1), "mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1),
          "cifar10": (32, 32, 3), "imagenet2012": (None, None, 3)}
TOKEN_GRIDS = {"digits": [(4, 4)], "mnist": [(7, 7)], "fashion_mnist": [(7, 7)],
               "cifar10": [(8, 8)], "default": [(8, 8)], "imagenet128": [(32, 32)],
               "vqvae2_imagenet256": [(32, 32), (64, 64)]}


def _token_grids(config):
  height, width, channels = SHAPES[config.data.dataset]
  if config.data.image_size is not None:
    height = width = config.data.image_size
  model = build.build_model(config.model, axis_name=None)
  images = jax.ShapeDtypeStruct((2, height, width, channels), jnp.float32)

  def init_and_apply(images):
    variables = model.init(jax.random.key(0), images, train=False)
    return build.token_grids(model.apply(variables, images, train=False))

  return sorted(grid.shape[1:3] for grid in jax.eval_shape(init_and_apply, images).values())


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("arg", [None, "tiny"])
def test_config_builds_its_model(name, arg):
  config = importlib.import_module(f"experiments.configs.{name}").get_config(arg)
  assert _token_grids(config) == TOKEN_GRIDS[name]
  if arg == "tiny":
    assert config.train.num_steps <= 20 and config.model.hidden_channels <= 16


def test_the_paper_configs():
  cifar = importlib.import_module("experiments.configs.cifar10").get_config()
  assert (cifar.model.hidden_channels, cifar.model.quantizer.codebook_size,
          cifar.model.quantizer.dim, cifar.data.batch_size, cifar.optimizer.learning_rate,
          cifar.train.num_steps) == (256, 512, 64, 128, 2e-4, 250_000)
  mnist = importlib.import_module("experiments.configs.mnist").get_config()
  assert mnist.data.data_dir == "../shared/tfds" and mnist.model.quantizer.codebook_size <= 512
  digits = importlib.import_module("experiments.configs.digits").get_config()
  assert digits.data.dataset == "vqjax_digits" and digits.data.download


def test_parse_arg():
  assert default.parse_arg(None, tiny=False).tiny is False
  assert default.parse_arg("tiny", tiny=False).tiny is True
  parsed = default.parse_arg("tiny=false,steps=5", tiny=True, steps=1)
  assert (parsed.tiny, parsed.steps) == (False, 5)
  with pytest.raises(ValueError, match="unknown config argument 'runlocal'.*takes tiny"):
    default.parse_arg("runlocal", tiny=False)
  with pytest.raises(ValueError, match="needs a value"):
    default.parse_arg("steps", steps=1)
