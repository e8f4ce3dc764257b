"""Reconstruction grids and codebook usage plots."""
import warnings

import numpy as np
import pytest
from PIL import Image

from vqjax.runner import images


def test_grid_puts_each_row_of_inputs_above_its_outputs():
  inputs = np.full((3, 8, 8, 1), -1.0, np.float32)   # black
  outputs = np.full((3, 8, 8, 1), 1.0, np.float32)   # white
  grid = images.reconstruction_grid(inputs, outputs, columns=2, border=2)
  # 8-pixel images are scaled to 64; cells are 64 pixels and a border apart.
  assert grid.dtype == np.uint8 and grid.shape == (2 * 2 * (64 + 2) + 2, 2 * (64 + 2) + 2, 1)
  assert grid[2 + 10, 2 + 10, 0] == 0                 # first row: an input
  assert grid[2 + 66 + 10, 2 + 10, 0] == 255          # below it: its output
  assert grid[2 + 2 * 66 + 10, 2 + 66 + 10, 0] == 255  # second row, second column: empty


def test_grid_maps_the_value_range_and_checks_shapes():
  inputs = np.full((1, 64, 64, 3), 0.5, np.float32)
  grid = images.reconstruction_grid(inputs, inputs, value_range=(0.0, 1.0), border=0)
  assert grid.shape == (128, 64, 3) and np.all(grid == 128)
  with pytest.raises(ValueError, match="must have one shape"):
    images.reconstruction_grid(inputs, inputs[..., :1])


@pytest.mark.parametrize("counts, panels", [
    ({"": np.arange(8.0)}, 1),
    ({"top/": np.arange(8.0), "bottom/": np.ones((2, 16))}, 3),
])
def test_usage_plot_has_a_panel_per_codebook_and_level(tmp_path, counts, panels):
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # e.g. constrained layout giving up on small panels
    plot = images.codebook_usage_plot(counts, width=400, panel_height=150)
  assert plot.shape == (150 * panels, 400, 3) and plot.dtype == np.uint8
  bar_blue = np.all(plot == (31, 119, 180), axis=-1)  # matplotlib's tab:blue
  for panel in range(panels):  # every panel has bars, not a blank canvas
    assert bar_blue[panel * 150:(panel + 1) * 150].sum() > 100
  images.save_png(str(tmp_path / "usage.png"), plot)
  with Image.open(tmp_path / "usage.png") as image:
    assert image.size == (400, 150 * panels) and image.mode == "RGB"


def test_usage_plot_bars_follow_the_counts():
  # Codes 0-3 used, 4-7 never: bars only over the left half of the axes.
  plot = images.codebook_usage_plot({"": np.array([4.0, 4, 4, 4, 0, 0, 0, 0])})
  bar_columns = np.flatnonzero(np.all(plot == (31, 119, 180), axis=-1).any(axis=0))
  axes_columns = np.flatnonzero((plot < 64).all(axis=-1).sum(axis=0) > plot.shape[0] // 2)
  left, right = axes_columns.min(), axes_columns.max()  # the axes' vertical spines
  assert bar_columns.min() <= left + 2 and bar_columns.max() < (left + right) / 2 + 2

