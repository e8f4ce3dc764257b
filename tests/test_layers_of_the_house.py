"""The house's shape, checked: nothing in vqjax imports upward, every jax.pmap lives in
vqjax/train/parallel.py, and no file grows past ~400 lines.

The layers, lowest first (a module may import its own layer and any lower one):
    collectives, quantizers <- nn <- models, losses, metrics <- data, tokens, sampling,
    guidance, maskgit <- train <- runner
"""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "vqjax"
LAYERS = {"collectives": 0, "quantizers": 0, "nn": 1, "models": 2, "losses": 2, "metrics": 2,
          "data": 3, "tokens": 3, "sampling": 3, "guidance": 3, "maskgit": 3, "train": 4,
          "runner": 5}
MAX_LINES = 400


def _layer(module: str) -> int | None:
  parts = module.split(".")
  if parts[0] != "vqjax" or len(parts) < 2:
    return None
  return LAYERS[parts[1]]


def _imports(path: pathlib.Path):
  tree = ast.parse(path.read_text())
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      yield node.module
      yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _modules():
  return sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE or p.name != "__init__.py")


def _module_name(path: pathlib.Path) -> str:
  return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def test_every_top_level_part_has_a_layer():
  parts = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
           if not p.name.startswith("_") and (p.is_dir() or p.suffix == ".py")}
  assert parts <= set(LAYERS), sorted(parts - set(LAYERS))


@pytest.mark.parametrize("path", _modules(), ids=_module_name)
def test_no_module_imports_upward(path):
  own = _layer(_module_name(path))
  upward = sorted({name for name in _imports(path)
                   if name in {"vqjax." + part for part in LAYERS} or
                   name.startswith("vqjax.") and name.split(".")[1] in LAYERS
                   if _layer(name) > own})
  assert not upward, f"{_module_name(path)} (layer {own}) imports {upward}"


def _uses_pmap(path: pathlib.Path) -> bool:
  return any(isinstance(node, ast.Attribute) and node.attr == "pmap"
             for node in ast.walk(ast.parse(path.read_text())))


def test_every_pmap_is_in_train_parallel():
  outside = [_module_name(path) for path in _modules()
             if _uses_pmap(path) and path != PACKAGE / "train" / "parallel.py"]
  assert not outside


@pytest.mark.parametrize("folder", ["vqjax", "experiments", "tests"])
def test_no_file_past_the_limit(folder):
  long = {str(path.relative_to(ROOT)): n for path in (ROOT / folder).rglob("*.py")
          if (n := len(path.read_text().splitlines())) > MAX_LINES}
  assert not long, f"files past {MAX_LINES} lines: {long}"
