"""Every ```python block of README.md runs as written, on its own: its own imports, its
own tiny inputs, nothing from the blocks before it (a reader copies one block)."""
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.M | re.S)


def test_the_readme_has_python_blocks():
  assert len(BLOCKS) >= 5


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs_on_its_own(index, tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)  # a block that writes files writes them here
  code = compile(BLOCKS[index], f"README.md python block {index + 1}", "exec")
  exec(code, {"__name__": f"readme_block_{index + 1}"})  # pylint: disable=exec-used
