"""The quick-start notebook runs top to bottom in a fresh kernel and reaches its checks."""
import os
import pathlib
import re

import pytest

nbclient = pytest.importorskip(
    "nbclient", reason="nbclient is not installed; pip install -e '.[test]' to run the notebook")
import nbformat  # pylint: disable=g-import-not-at-top,wrong-import-position  # nbclient's dependency

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = REPO_ROOT / "experiments" / "notebooks" / "quickstart.ipynb"
CELL_TIMEOUT_S = 300  # every cell takes under 20 s on 2 CPU cores


def _stream_text(notebook) -> str:
  return "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                 for output in cell.outputs if output.output_type == "stream")


def test_quickstart_notebook_runs(monkeypatch):
  # conftest forces 4 CPU devices through XLA_FLAGS, which the kernel would inherit; the
  # notebook runs as a researcher's would, on the one device.
  xla_flags = re.sub(r"--xla_force_host_platform_device_count=\d+", "",
                     os.environ.get("XLA_FLAGS", "")).strip()
  monkeypatch.setenv("XLA_FLAGS", xla_flags)
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  client = nbclient.NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                                   resources={"metadata": {"path": str(REPO_ROOT)}})
  client.execute()  # raises CellExecutionError, naming the cell, if any cell fails

  errors = [output for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.outputs if output.output_type == "error"]
  assert not errors, errors
  text = _stream_text(notebook)
  assert "straight-through gradient is the identity: True" in text
  images = [output for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.outputs if "image/png" in output.get("data", {})]
  assert len(images) == 3, "expected reconstructions, a token grid and samples as images"
  summary = re.search(r"summary: test_mse=(\S+) test_prior_nats_per_token=(\S+) "
                      r"samples=\((\d+), (\d+), (\d+)\)", text)
  assert summary, f"the notebook's last cell printed no summary line:\n{text[-2000:]}"
  assert float(summary.group(1)) < 0.1  # the notebook asserts the same loose bounds itself
  assert tuple(int(summary.group(i)) for i in (3, 4, 5)) == (16, 4, 4)
