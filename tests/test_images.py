"""Reconstruction grids and codebook usage plots."""
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


def test_usage_plot_has_a_panel_per_codebook_and_level(tmp_path):
  counts = {"top/": np.arange(8.0), "bottom/": np.ones((2, 16))}
  plot = images.codebook_usage_plot(counts, width=400, panel_height=100)
  assert plot.shape == (300, 400, 3) and plot.dtype == np.uint8
  assert (plot != 255).any()
  images.save_png(str(tmp_path / "usage.png"), plot)
  with Image.open(tmp_path / "usage.png") as image:
    assert image.size == (400, 300)
