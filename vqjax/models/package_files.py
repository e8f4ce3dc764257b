"""Finding a data file inside an installed package without importing the package."""
from __future__ import annotations

import importlib.util
import os


def package_file(package: str, relative_path: str, *, what: str, install_hint: str) -> str:
  """The path of relative_path inside the installed package; a ValueError naming `what`
  and install_hint where the package or the file is missing."""
  spec = importlib.util.find_spec(package)
  if spec is None:
    raise ValueError(f"{what} not found: the {package} package is not installed; "
                     f"{install_hint}")
  directories = list(spec.submodule_search_locations or [])
  if spec.origin:
    directories.append(os.path.dirname(spec.origin))
  for directory in directories:
    path = os.path.join(directory, relative_path)
    if os.path.isfile(path):
      return path
  raise ValueError(f"{what} not found: no {relative_path} in the {package} package at "
                   f"{', '.join(directories)}; {install_hint}")
