"""Pictures of a run as uint8 arrays: reconstruction grids (numpy), codebook usage bar
plots (matplotlib's Agg canvas, no display), saved as PNG with Pillow (and written to
TensorBoard by vqjax.runner.summaries).
"""
from __future__ import annotations

import math
from typing import Mapping

from etils import epath
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np
from PIL import Image

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
                        panel_height: int = 200) -> np.ndarray:
  """Bar plots of how often each code was used, one panel per codebook (per level for
  residual and grouped codebooks). counts: name -> [K] or [levels, K] -> uint8 RGB
  [panel_height * panels, width, 3]."""
  panels = []
  for name, value in counts.items():
    value = np.asarray(value, np.float64)
    for level, row in enumerate(value.reshape(-1, value.shape[-1])):
      label = name.rstrip("/") or "codebook"
      panels.append((label if value.ndim == 1 else f"{label} level {level}", row))
  dpi = 100
  figure = Figure(figsize=(width / dpi, panel_height * max(1, len(panels)) / dpi), dpi=dpi,
                  layout="constrained")
  canvas = FigureCanvasAgg(figure)  # renders to memory; pyplot and a display are never used
  for axes, (label, row) in zip(figure.subplots(max(1, len(panels)), 1, squeeze=False)[:, 0],
                                panels):
    # One filled step polygon, not K bar patches: fast for codebooks of 2^16 codes and more.
    axes.fill_between(np.arange(len(row) + 1) - 0.5, np.append(row, row[-1]), step="post",
                      color="tab:blue", linewidth=0)
    axes.set_xlim(-0.5, len(row) - 0.5)
    axes.set_ylim(0, max(float(row.max()), 1.0) * 1.05)
    axes.set_title(f"{label}: {int((row > 0).sum())}/{len(row)} codes used", fontsize=9)
    axes.set_xlabel("code index", fontsize=8)
    axes.set_ylabel("count", fontsize=8)
    axes.tick_params(labelsize=7)
  canvas.draw()
  return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def save_png(path: str, pixels: np.ndarray) -> None:
  """Saves uint8 [H, W] or [H, W, 1 | 3] pixels as a PNG (path local or gs://...)."""
  pixels = np.asarray(pixels, np.uint8)
  image = Image.fromarray(pixels[..., 0] if pixels.ndim == 3 and pixels.shape[-1] == 1 else pixels)
  with epath.Path(path).open("wb") as f:
    image.save(f, format="PNG")
