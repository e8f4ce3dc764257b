"""A checkpoint step's manifest: the sha256 of every file in its directory, so that damage
(a flipped bit, garbage, a truncated or missing file) is found before orbax reads it.

The manifest is `<step dir>/vqjax_manifest.json`:

    {"format": 1, "step": 4, "files": {"default/_METADATA": "<sha256 hex>", ...}}

with every file of the step directory but the manifest itself, by its path relative to
the step directory ('/'-separated). It is written to a temporary name and renamed, so it
is either whole or absent.
"""
from __future__ import annotations

import hashlib
import json
import os

from etils import epath

MANIFEST_NAME = "vqjax_manifest.json"
FORMAT = 1
_CHUNK_BYTES = 1 << 22


class DamagedStepError(Exception):
  """A step whose files differ from its manifest (or whose manifest is unreadable)."""

  def __init__(self, step: int, path: str, reason: str):
    super().__init__(f"checkpoint at step {step}: {path} {reason}")
    self.step, self.path, self.reason = step, path, reason


def write(step_dir: epath.Path, step: int) -> None:
  """Hashes every file under step_dir and writes its manifest there, atomically."""
  manifest = {"format": FORMAT, "step": step, "files": _hashes(step_dir)}
  temporary = step_dir / f"{MANIFEST_NAME}.tmp-{os.getpid()}"
  temporary.write_text(json.dumps(manifest, indent=1, sort_keys=True))
  temporary.rename(step_dir / MANIFEST_NAME)


def verify(step_dir: epath.Path, step: int) -> bool:
  """True if every file the manifest names is there with its hash; False if there is no
  manifest. Raises DamagedStepError naming the first damaged file (the manifest itself
  when it cannot be parsed or belongs to another step)."""
  path = step_dir / MANIFEST_NAME
  if not path.exists():
    return False
  try:
    manifest = json.loads(path.read_bytes().decode("utf-8"))
    files = manifest["files"]
    ok = (manifest["format"] == FORMAT and manifest["step"] == step and isinstance(files, dict)
          and files and all(isinstance(h, str) for h in files.values()))
  except (OSError, ValueError, KeyError, TypeError) as error:  # UnicodeDecodeError: ValueError
    raise DamagedStepError(step, str(path), f"cannot be parsed ({error})") from None
  if not ok:
    raise DamagedStepError(step, str(path), "is not a manifest of this step")
  for name, expected in sorted(files.items()):
    file = step_dir / name
    if not file.exists():
      raise DamagedStepError(step, str(file), "is missing")
    try:
      actual = _sha256(file)
    except OSError as error:
      raise DamagedStepError(step, str(file), f"cannot be read ({error})") from None
    if actual != expected:
      raise DamagedStepError(step, str(file), f"does not match its sha256 in {MANIFEST_NAME} "
                             "(one of the two is damaged)")
  return True


def _hashes(step_dir: epath.Path) -> dict[str, str]:
  hashes = {}
  for file in _files(step_dir):
    name = file.relative_to(step_dir).as_posix()
    if not name.startswith(MANIFEST_NAME):
      hashes[name] = _sha256(file)
  return dict(sorted(hashes.items()))


def _files(directory: epath.Path):
  """Every file under directory (epath's rglob would refuse: too many requests on GCS)."""
  for path in directory.iterdir():
    if path.is_dir():
      yield from _files(path)
    else:
      yield path


def _sha256(file: epath.Path) -> str:
  digest = hashlib.sha256()
  with file.open("rb") as f:
    for chunk in iter(lambda: f.read(_CHUNK_BYTES), b""):
      digest.update(chunk)
  return digest.hexdigest()
