"""The one check of a config section's field names, for every part that reads one."""
from __future__ import annotations

from typing import Any, Iterable, Mapping


def check_known_fields(fields: Mapping[str, Any], known: Iterable[str], *, where: str,
                       owner: str | None = None) -> None:
  """Raises a ValueError naming the unknown fields of the section `where` (read by
  `owner`, e.g. a class name) and the known ones."""
  known = list(known)
  unknown = sorted(set(fields) - set(known))
  if unknown:
    reader = f" for {owner}" if owner else ""
    raise ValueError(f"{where} has unknown field(s) {', '.join(map(repr, unknown))}{reader}; "
                     f"its fields are {', '.join(known)}")
