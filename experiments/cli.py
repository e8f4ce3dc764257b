"""What every entry point checks of its command line before any work."""
from __future__ import annotations

from typing import Sequence

from absl import app


def check_no_arguments(argv: Sequence[str], example: str) -> None:
  """Raises app.UsageError naming the flag syntax when argv holds more than the program.

  example: the flags of a good command line, e.g. '--workdir=DIR'.
  """
  extra = list(argv[1:])
  if not extra:
    return
  hint = ""
  if "=" in extra[0] and not extra[0].startswith("-"):
    hint = f" (did you mean --{extra[0]}?)"
  elif extra[0].lower() in ("true", "false"):
    hint = " (a boolean flag takes no separate value: --name or --noname, or --name=false)"
  names = ", ".join(repr(argument) for argument in extra)
  raise app.UsageError(
      f"unexpected argument{'s' if len(extra) > 1 else ''} {names}{hint}; flags are given as "
      f"--name=value, e.g. {example}")
