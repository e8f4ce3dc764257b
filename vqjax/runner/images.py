"""Pictures of a run as uint8 arrays: reconstruction grids and codebook usage bar plots,
drawn with Pillow and saved as PNG (and written to TensorBoard by vqjax.runner.summaries).
"""
from __future__ import annotations

import math
from typing import Mapping

from etils import epath
import numpy as np
from PIL import Image, ImageDraw

_MIN_SIDE = 64  # small images (8x8 digits) are scaled up to at least this many pixels


def reconstruction_grid(inputs, outputs, *, value_range=(-1.0, 1.0), columns: int = 8,
                        border: int = 2) -> np.ndarray:
  """Inputs beside their reconstructions: rows of `columns` inputs, each above a row of
  their outputs. inputs, outputs [N, H, W, C] in value_range -> uint8 [rows, cols, C]."""
  inputs, outputs = np.asarray(inputs, np.float32), np.asarray(outputs, np.float32)
  if inputs.shape != outputs.shape or inputs.ndim != 4:
    raise ValueError(f"inputs {inputs.shape} and outputs {outputs.shape} must have one shape "
                     "[N, H, W, C]")
  columns = max(1, min(columns, len(inputs)))
  cells = []
  for start in range(0, len(inputs), columns):
    for images in (inputs, outputs):
      row = list(images[start:start + columns])
      cells += row + [None] * (columns - len(row))
  return _tile(cells, columns, inputs.shape[1:], value_range=value_range, border=border)


def image_grid(images, *, value_range=(-1.0, 1.0), columns: int = 8,
               border: int = 2) -> np.ndarray:
  """Images [N, H, W, C] in value_range in rows of `columns` -> uint8 [rows, cols, C]
  (samples of a prior); small images scaled up as in reconstruction_grid."""
  images = np.asarray(images, np.float32)
  if images.ndim != 4:
    raise ValueError(f"images have shape {images.shape}; pass [N, H, W, C]")
  return _tile(list(images), max(1, min(columns, len(images))), images.shape[1:],
               value_range=value_range, border=border)


def _tile(cells, columns: int, image_shape, *, value_range, border: int) -> np.ndarray:
  """Images (None: an empty cell) laid out row by row on a white uint8 canvas, small
  images scaled up to at least _MIN_SIDE pixels."""
  low, high = value_range
  height, width, channels = image_shape
  scale = max(1, math.ceil(_MIN_SIDE / max(height, width)))
  rows = math.ceil(len(cells) / columns)
  cell_h, cell_w = height * scale + border, width * scale + border
  grid = np.full((rows * cell_h + border, columns * cell_w + border, channels), 255, np.uint8)
  for i, image in enumerate(cells):
    if image is None:
      continue
    row, column = divmod(i, columns)
    pixels = np.clip((image - low) / (high - low), 0.0, 1.0)
    pixels = (pixels * 255.0 + 0.5).astype(np.uint8).repeat(scale, 0).repeat(scale, 1)
    top, left = row * cell_h + border, column * cell_w + border
    grid[top:top + height * scale, left:left + width * scale] = pixels
  return grid


def codebook_usage_plot(counts: Mapping[str, np.ndarray], *, width: int = 800,
                        panel_height: int = 160) -> np.ndarray:
  """Bar plots of how often each code was used, one panel per codebook (per level for
  residual and grouped codebooks). counts: name -> [K] or [levels, K] -> uint8 RGB."""
  panels = []
  for name, value in counts.items():
    value = np.asarray(value, np.float64)
    for level, row in enumerate(value.reshape(-1, value.shape[-1])):
      label = name if value.ndim == 1 else f"{name} level {level}"
      panels.append((label, row))
  image = Image.new("RGB", (width, panel_height * max(1, len(panels))), "white")
  draw = ImageDraw.Draw(image)
  for index, (label, row) in enumerate(panels):
    _draw_panel(draw, row, label, top=index * panel_height, width=width, height=panel_height)
  return np.asarray(image)


def save_png(path: str, pixels: np.ndarray) -> None:
  """Saves uint8 [H, W] or [H, W, 1 | 3] pixels as a PNG (path local or gs://...)."""
  pixels = np.asarray(pixels, np.uint8)
  image = Image.fromarray(pixels[..., 0] if pixels.ndim == 3 and pixels.shape[-1] == 1 else pixels)
  with epath.Path(path).open("wb") as f:
    image.save(f, format="PNG")


def _draw_panel(draw: ImageDraw.ImageDraw, counts: np.ndarray, label: str, *, top: int,
                width: int, height: int) -> None:
  left, right, plot_top, bottom = 40, width - 10, top + 22, top + height - 18
  used = int((counts > 0).sum())
  draw.text((left, top + 4), f"{label or 'codebook'}: {used}/{len(counts)} codes used, "
            f"max count {int(counts.max())}; x: code index, y: count", fill="black")
  draw.line([(left, bottom), (right, bottom)], fill="black")
  draw.line([(left, plot_top), (left, bottom)], fill="black")
  draw.text((4, bottom - 10), "0", fill="black")
  draw.text((left + 2, bottom + 3), "0", fill="black")
  draw.text((right - 30, bottom + 3), str(len(counts) - 1), fill="black")
  peak = max(float(counts.max()), 1.0)
  bar = (right - left) / len(counts)
  for code, count in enumerate(counts):
    if count > 0:
      x0 = left + code * bar
      y0 = min(bottom - 2, bottom - (bottom - plot_top) * count / peak)  # at least 1 pixel
      draw.rectangle([x0, y0, max(x0 + bar - 1, x0), bottom - 1], fill=(31, 119, 180))
