"""What the resumable result tables (quantizer_table.py, prior_table.py) share: one JSON
file per finished row, written atomically, and a markdown table printed and written."""
from __future__ import annotations

import json
import os
from typing import Callable, Sequence

from absl import app


def read_json(path: str) -> dict | None:
  """A finished row's results, None where the row has not finished."""
  if not os.path.exists(path):
    return None
  with open(path) as file:
    return json.load(file)


def write_json(path: str, value) -> None:
  """Writes path atomically: a row's file is there whole or not at all."""
  temporary = path + ".tmp"
  with open(temporary, "w") as file:
    json.dump(value, file, indent=2)
  os.replace(temporary, path)


def finished_rows(path_of_row: Callable[[str], str], known: Sequence[str]) -> list[dict]:
  """Every finished row's results in the order of known, whichever run finished each: the
  whole table, not only the rows of the latest command."""
  results = (read_json(path_of_row(row)) for row in known)
  return [result for result in results if result is not None]


def format_cell(value, pattern: str) -> str:
  """'-' for a missing value, 'a / b' for one value per level."""
  if value is None or value == []:
    return "-"
  if isinstance(value, list):
    return " / ".join(pattern.format(v) for v in value)
  return pattern.format(value)


def markdown(first_title: str, titles: Sequence[str], rows: Sequence[tuple[str, list[str]]]
             ) -> str:
  """A markdown table: (label, cells) per row under first_title and titles."""
  lines = [f"| {first_title} | " + " | ".join(titles) + " |", "|" + "---|" * (len(titles) + 1)]
  lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows]
  return "\n".join(lines) + "\n"


def write_table(path: str, table: str) -> None:
  with open(path, "w") as file:
    file.write(table)
  print(table, flush=True)


def check_rows(rows: Sequence[str], known: Sequence[str]) -> None:
  unknown = [row for row in rows if row not in known]
  if unknown:
    raise app.UsageError(f"--rows names unknown rows {unknown}; choose from {','.join(known)}")
