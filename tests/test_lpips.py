"""Tests for vqjax.models.lpips: the published distances, input handling, gradients, dtypes."""
import functools
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from vqjax.models import lpips as lpips_lib
from vqjax.models.lpips import LPIPS, VGG16Features, lpips_distance
from vqjax.models.lpips_weights import load_lpips_variables

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SHARED_IMAGES = os.path.join(_REPO_ROOT, "..", "shared", "lpips")
# The LPIPS repository's example distances for VGG16 (lpips 0.1), its ex_ref/ex_p0/ex_p1.png.
_PUBLISHED = {"ex_p0.png": 0.569, "ex_p1.png": 0.422}

# VGG16's convs are library calls; the unoptimized CPU backend halves compile time.
_jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})
_distance = _jit(lpips_distance, static_argnames="resize_to")


@pytest.fixture(scope="module")
def variables():
  return jax.tree.map(jnp.asarray, load_lpips_variables())


@pytest.fixture(scope="module")
def reference_images():
  """(ref, p0, p1) as float32 [64, 64, 3] in [-1, 1]."""
  if not os.path.isdir(_SHARED_IMAGES):
    pytest.skip(f"the LPIPS example images are not in {_SHARED_IMAGES}")
  def load(name):
    with Image.open(os.path.join(_SHARED_IMAGES, name)) as image:
      return np.asarray(image.convert("RGB"), np.float32) / 127.5 - 1.0
  return tuple(load(name) for name in ("ex_ref.png", "ex_p0.png", "ex_p1.png"))


def _images(shape, seed=0):
  # NumPy, not jax.random: every new shape would compile a threefry kernel.
  return np.random.default_rng(seed).uniform(-1.0, 1.0, shape).astype(np.float32)


def _abstract_distance(shape_a, shape_b=None, dtype=jnp.float32, **kwargs):
  """Traces LPIPS init and apply on shapes only: shape checks run, nothing compiles."""
  model = LPIPS(**kwargs)
  a = jax.ShapeDtypeStruct(shape_a, dtype)
  b = jax.ShapeDtypeStruct(shape_b or shape_a, dtype)
  variables = jax.eval_shape(lambda a, b: model.init(jax.random.key(0), a, b), a, b)
  return jax.eval_shape(model.apply, variables, a, b)


def test_published_reference_distances(variables, reference_images):
  ref, p0, p1 = reference_images
  distances = np.asarray(_distance(variables, jnp.stack([ref, ref]), jnp.stack([p0, p1])))
  print(f"d(ref, p0) = {distances[0]:.6f}, d(ref, p1) = {distances[1]:.6f}")
  np.testing.assert_allclose(distances, list(_PUBLISHED.values()), atol=2e-3)


def test_distance_to_itself_is_zero(variables, reference_images):
  ref, p0, _ = reference_images
  images = jnp.stack([ref, p0])
  distances = _distance(variables, images, images)
  assert distances.dtype == jnp.float32
  np.testing.assert_allclose(distances, 0.0, atol=1e-6)


def test_gradient_wrt_images_is_finite_and_nonzero(variables, reference_images):
  ref, p0, _ = reference_images
  # variables as an argument, not a closed-over constant: 58 MB of constants compile slowly.
  loss = lambda images, variables: jnp.sum(lpips_distance(variables, images, p0[None]))
  grad = _jit(jax.grad(loss))(ref[None], variables)
  chex.assert_shape(grad, (1, 64, 64, 3))
  chex.assert_tree_all_finite(grad)
  assert float(jnp.max(jnp.abs(grad))) > 0


def test_precomputed_target_features_give_the_same_distances_and_gradients(
    variables, reference_images):
  ref, p0, p1 = reference_images
  images, targets = jnp.stack([p0, p1]), jnp.stack([ref, ref])
  model = LPIPS()

  @_jit
  def both(variables, images, targets):
    together = lambda x: jnp.sum(model.apply(variables, x, targets))
    features = model.apply(variables, targets, method="target_features")
    apart = lambda x: jnp.sum(model.apply(variables, x, features,
                                          method="distance_to_features"))
    return jax.value_and_grad(together)(images), jax.value_and_grad(apart)(images)

  (value, grad), (value_apart, grad_apart) = both(variables, images, targets)
  np.testing.assert_allclose(value_apart, value, rtol=1e-5)
  np.testing.assert_allclose(grad_apart, grad, rtol=1e-4, atol=1e-7)
  with pytest.raises(ValueError, match="method='target_features' on images of the same"):
    model.apply(variables, images[:, :32, :32],
                [jnp.zeros((2, 64, 64, 64))] * 5, method="distance_to_features")


def test_unit_normalize_of_zero_features_is_zero_with_finite_gradient():
  # Where every ReLU channel is 0 the norm is 0; sqrt's infinite gradient must not leak.
  features = jnp.zeros((1, 2, 2, 4)).at[0, 0, 0].set(jnp.array([3.0, 4.0, 0.0, 0.0]))
  normalized = _jit(lpips_lib._unit_normalize)(features)
  np.testing.assert_allclose(normalized[0, 0, 0], [0.6, 0.8, 0.0, 0.0], rtol=1e-6)
  np.testing.assert_array_equal(normalized[0, 1], 0.0)
  grad = _jit(jax.grad(lambda f: jnp.sum(lpips_lib._unit_normalize(f) * jnp.arange(4.0))))(
      features)
  chex.assert_tree_all_finite(grad)


def test_bfloat16_compute_is_close_to_float32(variables, reference_images):
  ref, p0, p1 = reference_images
  a, b = jnp.stack([ref, ref]), jnp.stack([p0, p1])
  model = LPIPS(dtype=jnp.bfloat16)
  distances = _jit(model.apply)(variables, a, b)
  assert distances.dtype == jnp.float32
  np.testing.assert_allclose(distances, _distance(variables, a, b), atol=1e-2)


# 64x64 batches of 2 share one compilation with the reference images.
def test_grayscale_equals_repeated_rgb(variables):
  a, b = _images((2, 64, 64, 1), seed=1), _images((2, 64, 64, 1), seed=2)
  repeat = functools.partial(np.repeat, repeats=3, axis=-1)
  np.testing.assert_allclose(_distance(variables, a, b),
                             _distance(variables, repeat(a), repeat(b)), rtol=1e-6, atol=1e-7)


def test_resize_to_resizes_small_images_bilinearly(variables):
  a, b = _images((2, 8, 8, 1), seed=3), _images((2, 8, 8, 1), seed=4)
  resize = functools.partial(jax.image.resize, shape=(2, 64, 64, 1), method="bilinear")
  distances = _distance(variables, a, b, resize_to=64)
  chex.assert_shape(distances, (2,))
  assert float(jnp.min(distances)) > 0
  np.testing.assert_allclose(distances, _distance(variables, resize(a), resize(b)),
                             rtol=1e-6, atol=1e-7)


def test_small_images_need_resize_to():
  with pytest.raises(ValueError, match=r"needs at least 16x16 images.*resize_to"):
    _abstract_distance((2, 8, 8, 3))
  with pytest.raises(ValueError, match=r"images are 28x12"):
    _abstract_distance((2, 28, 12, 1))
  chex.assert_shape(_abstract_distance((2, 8, 8, 1), resize_to=32), (2,))
  for resize_to in (8, 0, 32.0):
    with pytest.raises(ValueError, match=r"resize_to is .* e.g. 32"):
      _abstract_distance((2, 32, 32, 3), resize_to=resize_to)


@pytest.mark.parametrize("shape_a, shape_b, dtype, message", [
    ((2, 16, 16, 3), (3, 16, 16, 3), jnp.float32, r"same shape"),
    ((2, 16, 16, 3), (2, 16, 32, 3), jnp.float32, r"same shape"),
    ((16, 16, 3), (16, 16, 3), jnp.float32, r"\[batch, height, width, channels\].*images\[None\]"),
    ((2, 16, 16, 4), (2, 16, 16, 4), jnp.float32, r"4 channels.*RGB \(3\) or grayscale \(1\)"),
    ((2, 16, 16, 3), (2, 16, 16, 3), jnp.uint8, r"dtype uint8.*127.5"),
])
def test_invalid_images_raise_clear_errors(shape_a, shape_b, dtype, message):
  with pytest.raises(ValueError, match=message):
    _abstract_distance(shape_a, shape_b, dtype=dtype)


def test_vgg16_features_shapes_and_param_names():
  features, variables = jax.eval_shape(
      lambda x: VGG16Features().init_with_output(jax.random.key(0), x), jnp.zeros((2, 32, 48, 3)))
  assert [f.shape for f in features] == [
      (2, 32, 48, 64), (2, 16, 24, 128), (2, 8, 12, 256), (2, 4, 6, 512), (2, 2, 3, 512)]
  assert sorted(variables["params"]) == sorted(f"Conv_{k}" for k in range(13))


def test_bfloat16_compute_keeps_float32_params_and_distances():
  model = LPIPS(dtype=jnp.bfloat16)
  a = jax.ShapeDtypeStruct((3, 16, 16, 3), jnp.float32)
  variables = jax.eval_shape(lambda a: model.init(jax.random.key(0), a, a), a)
  assert {leaf.dtype for leaf in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}
  distances, state = jax.eval_shape(
      lambda v, a: model.apply(v, a, a, capture_intermediates=True), variables, a)
  chex.assert_shape(distances, (3,))
  assert distances.dtype == jnp.float32
  vgg_features = state["intermediates"]["VGG16_0"]["__call__"][0]
  assert {f.dtype for f in vgg_features} == {jnp.dtype(jnp.bfloat16)}
