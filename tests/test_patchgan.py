"""Tests for vqjax.models.patchgan."""
import functools
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vqjax.models.patchgan import PatchGANDiscriminator, TinyPatchGAN

STATS = "batch_stats"


def _key(seed):
  # rbg keys (XLA's RngBitGenerator) compile in a fraction of the time of threefry keys.
  return jax.random.key(seed, impl="rbg")


_jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})


def _images(shape, seed=0):
  return jnp.asarray(np.random.default_rng(seed).uniform(-1.0, 1.0, shape), jnp.float32)


def _abstract(model, shape, train=False):
  """(variables, logits) as shapes and dtypes: traced, never compiled."""
  images = jax.ShapeDtypeStruct(shape, jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(_key(0), x, train=False), images)
  apply = lambda v, x: model.apply(v, x, train=train, mutable=[STATS] if train else False)
  return variables, jax.eval_shape(apply, variables, images)


def _train_forward(model):
  return lambda v, x: model.apply(v, x, train=True, mutable=[STATS])


@pytest.mark.parametrize("model,shape,grid", [
    (TinyPatchGAN(), (2, 16, 16, 3), (2, 2)),
    (TinyPatchGAN(), (2, 32, 24, 1), (6, 4)),
    (PatchGANDiscriminator(channels=4), (1, 24, 24, 3), (1, 1)),
    (PatchGANDiscriminator(), (1, 256, 256, 3), (30, 30)),  # taming's 30 x 30 patches
])
def test_logit_grid_shape(model, shape, grid):
  _, logits = _abstract(model, shape)
  chex.assert_shape(logits, (shape[0], *grid))
  assert logits.dtype == jnp.float32


def test_layer_widths_and_norms():
  variables, _ = _abstract(PatchGANDiscriminator(channels=4, num_layers=4), (1, 48, 48, 3))
  params = variables["params"]
  widths = [params[f"conv{n}"]["kernel"].shape[-1] for n in range(5)]
  assert widths == [4, 8, 16, 32, 32]  # channels * min(2**n, 8)
  chex.assert_shape(params["logits"]["kernel"], (4, 4, 32, 1))
  assert "bias" not in params["conv1"]  # BatchNorm follows, as in taming
  assert set(variables[STATS]) == {"norm1", "norm2", "norm3", "norm4"}
  for norm, norm_params in [("group", {"scale", "bias"}), ("none", None)]:
    variables, _ = _abstract(TinyPatchGAN(norm=norm), (1, 16, 16, 3))
    assert STATS not in variables
    assert "bias" in variables["params"]["conv1"]
    assert variables["params"].get("norm1", {}).keys() == (norm_params or set())


def test_bfloat16_compute_gives_float32_logits_and_params():
  variables, logits = _abstract(TinyPatchGAN(dtype=jnp.bfloat16), (2, 16, 16, 3), train=True)
  assert logits[0].dtype == jnp.float32
  for leaf in jax.tree.leaves(variables):
    assert leaf.dtype == jnp.float32


def test_pmapped_batch_norm_uses_global_batch_statistics():
  images = _images((8, 16, 16, 3))
  model = TinyPatchGAN()
  variables = _jit(model.init, static_argnames="train")(_key(0), images, train=False)
  logits, updated = _jit(_train_forward(model))(variables, images)

  synced = TinyPatchGAN(axis_name="batch")
  pmapped = jax.pmap(_train_forward(synced), axis_name="batch", in_axes=(None, 0))
  shard_logits, shard_updated = pmapped(variables, images.reshape(4, 2, 16, 16, 3))

  chex.assert_trees_all_close(shard_logits.reshape(logits.shape), logits, atol=1e-5)
  for replica in range(4):
    chex.assert_trees_all_close(jax.tree.map(lambda x: x[replica], shard_updated), updated,
                                atol=1e-6)
  moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), updated[STATS],
                       variables[STATS])
  assert min(jax.tree.leaves(moved)) > 0  # every running mean and variance moved


def test_eval_mode_uses_the_running_statistics():
  model = TinyPatchGAN()
  images = _images((4, 16, 16, 3))

  @_jit
  def run(images):
    variables = model.init(_key(0), images, train=False)
    _, updated = model.apply(variables, images, train=True, mutable=[STATS])
    variables = {**variables, **updated}
    evaluate = lambda x: model.apply(variables, x, train=False)
    train_alone = model.apply(variables, images[:1], train=True, mutable=[STATS])[0]
    return (evaluate(images), evaluate(images[:1]),
            model.apply(variables, images, train=True, mutable=[STATS])[0], train_alone)

  eval_batch, eval_alone, train_batch, train_alone = run(images)
  # Running statistics: an image's logits do not depend on the rest of the batch ...
  chex.assert_trees_all_close(eval_batch[:1], eval_alone, atol=1e-5)
  # ... while batch statistics do, and differ from the running ones.
  assert float(jnp.abs(train_batch[:1] - train_alone).max()) > 1e-3
  assert float(jnp.abs(train_batch - eval_batch).max()) > 1e-3


@pytest.mark.parametrize("model,shape,message", [
    (TinyPatchGAN(), (1, 16, 8, 3),
     "image size 8 is too small for a PatchGAN discriminator with num_layers=2: it needs at "
     "least 12 pixels (3 * 2**num_layers) per side; use num_layers=1 or images of at least "
     "12 pixels"),
    (TinyPatchGAN(), (1, 4, 4, 3),
     "image size 4 is too small for a PatchGAN discriminator with num_layers=2: it needs at "
     "least 12 pixels (3 * 2**num_layers) per side; use images of at least 12 pixels per side"),
    (PatchGANDiscriminator(), (1, 16, 16, 3),
     "image size 16 is too small for a PatchGAN discriminator with num_layers=3: it needs at "
     "least 24 pixels (3 * 2**num_layers) per side; use num_layers=2 or images of at least "
     "24 pixels"),
    (TinyPatchGAN(), (16, 16, 3), "images must have shape [batch, height, width, channels]"),
    (TinyPatchGAN(num_layers=0), (1, 16, 16, 3), "num_layers is 0; it must be a positive int"),
    (TinyPatchGAN(channels=0), (1, 16, 16, 3), "channels is 0; it must be a positive int"),
    (TinyPatchGAN(norm="instance"), (1, 16, 16, 3),
     "norm is 'instance'; use one of ('batch', 'group', 'none')"),
])
def test_errors(model, shape, message):
  with pytest.raises(ValueError, match=re.escape(message)):
    _abstract(model, shape)
