"""Images as the FID Inception network takes them: float32 RGB in [0, 255], checked on the
host (inside jit the values cannot be checked)."""
from __future__ import annotations

import numpy as np

# Float rounding (e.g. (x + 1) * 127.5) may step this far outside the range: clipped, not refused.
_TOLERANCE = 1e-4


def inception_inputs(images, value_range=(0.0, 255.0), *, clip: bool = False) -> np.ndarray:
  """[N, H, W, 1 or 3] images in value_range -> float32 [N, H, W, 3] in [0, 255].

  Grayscale images are repeated to 3 channels (as FID on grayscale data is computed).
  Values outside value_range raise, unless clip=True (for reconstructions or samples, whose
  decoders may overshoot the range).
  """
  images = np.asarray(images)
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise ValueError(f"images have shape {images.shape}; expected [batch, height, width, 1 "
                     "or 3] (flatten a [devices, batch, ...] layout with reshape(-1, *shape[-3:]))")
  if images.dtype == np.bool_ or not (np.issubdtype(images.dtype, np.floating) or
                                      np.issubdtype(images.dtype, np.integer)):
    raise ValueError(f"images have dtype {images.dtype}; pass uint8 or floating images")
  low, high = (float(v) for v in value_range)
  if not high > low:
    raise ValueError(f"value_range {tuple(value_range)} is empty; pass (low, high), e.g. "
                     "(0, 255) for uint8 images or (-1, 1) for a model's outputs")
  images = images.astype(np.float64)
  if not np.isfinite(images).all():
    raise ValueError("images hold NaN or infinity; a diverged model's samples cannot be scored")
  margin = _TOLERANCE * (high - low)
  smallest, largest = images.min(initial=low), images.max(initial=high)
  if not clip and (smallest < low - margin or largest > high + margin):
    raise ValueError(
        f"images span [{smallest:.4g}, {largest:.4g}], outside value_range ({low:g}, "
        f"{high:g}); pass the range the images are in (e.g. value_range=(-1, 1) for a "
        "model's outputs, (0, 1) for normalized images), or clip=True for reconstructions "
        "and samples that overshoot it")
  images = (np.clip(images, low, high) - low) * (255.0 / (high - low))
  if images.shape[-1] == 1:
    images = np.repeat(images, 3, axis=-1)
  return images.astype(np.float32)
