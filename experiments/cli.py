"""What every entry point does before any work: its command line checked, a quiet
console set up, and --help answered at once.

The console shows vqjax's own lines (progress, evaluation results, where files went) and
every library's warnings; library chatter (Orbax, TFDS, JAX, TensorFlow's C++ banner) is
held back unless --verbose is given. Heavy modules (TensorFlow, JAX) are imported inside
main, after the flags are parsed, so that --help returns at once.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
import time
from typing import Callable, Sequence

from absl import app
from absl import flags
from absl import logging as absl_logging

flags.DEFINE_bool("verbose", False, "Show every library's INFO log lines (Orbax, TFDS, JAX, "
                  "TensorFlow) beside vqjax's own.")

# Warnings that every evaluate, sample and prior run causes on purpose (vqjax opens
# checkpoints read-only there): not actionable, so held back with the chatter.
_EXPECTED_WARNINGS = ("CheckpointManagerOptions.read_only=True, setting",
                      "Given directory is read only=")
_HELP = ("-h", "-?", "--help", "--helpshort", "--helpfull", "--helpxml")
# The sampler's settings a command line may set (vqjax.runner.prior_sampling.SAMPLING_FIELDS).
SAMPLING_FLAGS = ("temperature", "top_k", "top_p", "guidance_scale", "guidance_ramp",
                  "maskgit_steps", "choice_temperature")
_OWN = tuple(os.path.join(os.path.normpath(path), "") for path in (
    os.path.dirname(os.path.abspath(__file__)),
    *importlib.util.find_spec("vqjax").submodule_search_locations))


def run(main: Callable[[Sequence[str]], None]) -> None:
  """app.run(main), but --help (and --helpfull) exits 0 rather than absl's 1."""
  try:
    app.run(main)
  except SystemExit as error:
    if error.code == 1 and any(arg in _HELP for arg in sys.argv[1:]):
      raise SystemExit(0) from None
    raise


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


def check_run_workdir(workdir: str | None, *, command: str, prior: bool | None) -> None:
  """Raises app.UsageError naming the subfolder to pass where workdir is a folder of runs
  (no config.json of its own, runs in its subfolders, as the quick start's tokenizer/ and
  prior/). prior: whether command reads a prior's run (sample) or a tokenizer's; None:
  either (evaluate)."""
  if (not workdir or "://" in workdir or not os.path.isdir(workdir)
      or os.path.exists(os.path.join(workdir, "config.json"))):
    return  # a run's workdir, or a mistake the library's own errors name
  runs = {}  # subfolder -> whether it holds a prior's run
  for name in sorted(os.listdir(workdir)):
    try:
      with open(os.path.join(workdir, name, "config.json")) as file:
        runs[name] = bool(json.load(file).get("tokenizer_workdir"))
    except (OSError, ValueError, AttributeError):
      continue
  if not runs:
    return
  kinds = ", ".join(f"{name}/ ({'a prior' if is_prior else 'a tokenizer'})"
                    for name, is_prior in runs.items())
  wanted = {True: "a prior's (experiments.train_prior)",
            False: "a tokenizer's (experiments.train)",
            None: "a tokenizer's or a prior's"}[prior]
  fitting = [name for name, is_prior in runs.items() if prior is None or is_prior == prior]
  fix = (f"pass --workdir={os.path.join(workdir, fitting[0])}" if fitting else
         f"none of them is {wanted.split(' (')[0]} run")
  raise app.UsageError(
      f"--workdir={workdir} has no config.json: it is a folder of runs, {kinds}, not a run; "
      f"{command} reads {wanted} workdir: {fix}")


def setup_console(verbose: bool | None = None) -> None:
  """Quiet console unless verbose (default: the --verbose flag): vqjax's INFO lines as
  'HH:MM:SS message', any library's warnings and errors, no library INFO. Call it first
  in main: TensorFlow reads TF_CPP_MIN_LOG_LEVEL once, when it is imported (an explicit
  TF_CPP_MIN_LOG_LEVEL in the environment wins)."""
  verbose = flags.FLAGS.verbose if verbose is None else verbose
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else "1")  # 1: no INFO
  # TensorFlow only reads and decodes data here, none of the math oneDNN's kernels speed
  # up; with them on it prints its banner twice on every start, at any log level.
  os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
  absl_logging.set_verbosity(absl_logging.INFO)
  handler = absl_logging.get_absl_handler().python_handler
  for old in [f for f in handler.filters if isinstance(f, OwnLinesOrWarnings)]:
    handler.removeFilter(old)
  if verbose:
    handler.setFormatter(absl_logging.PythonFormatter())
    return
  handler.addFilter(OwnLinesOrWarnings())
  handler.setFormatter(ConsoleFormatter())


class OwnLinesOrWarnings(logging.Filter):
  """Passes vqjax's and the entry points' records, and anyone's warnings and errors but
  the expected ones."""

  def filter(self, record: logging.LogRecord) -> bool:
    if os.path.normpath(record.pathname).startswith(_OWN):
      return True
    if record.levelno < logging.WARNING:
      return False
    return not (record.levelno == logging.WARNING
                and str(record.msg).startswith(_EXPECTED_WARNINGS))


class ConsoleFormatter(logging.Formatter):
  """'14:32:58 step 5/20 ...'; warnings and errors name their level."""

  def format(self, record: logging.LogRecord) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
    level = f"{record.levelname}: " if record.levelno >= logging.WARNING else ""
    return f"{stamp} {level}{super().format(record)}"


def define_sampling_flags(*, temperature: float | None,
                          flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """The sampler's flags (SAMPLING_FLAGS, and --steps for --maskgit_steps) of
  experiments.sample and evaluate; temperature: its default (None: the prior's config
  decides; guidance_ramp then too)."""
  flags.DEFINE_float("temperature", temperature, "Softmax temperature (0: greedy)"
                     + ("." if temperature is not None else "; default: the config's."),
                     flag_values=flag_values)
  flags.DEFINE_integer("top_k", None, "Sample only from the k most likely tokens.",
                       flag_values=flag_values)
  flags.DEFINE_float("top_p", None, "Sample only from the nucleus of this probability mass.",
                     flag_values=flag_values)
  flags.DEFINE_float("guidance_scale", None, "Classifier-free guidance scale s: uncond + s * "
                     "(cond - uncond); 1 is plain conditional sampling (priors trained with "
                     "config.model.label_dropout_rate > 0).", flag_values=flag_values)
  flags.DEFINE_bool("guidance_ramp", None if temperature is None else False,
                    "Ramp the guidance scale linearly from 1 over the positions (MaskGIT: "
                    "the steps).", flag_values=flag_values)
  flags.DEFINE_integer("maskgit_steps", None, "MaskGIT priors: parallel decoding steps "
                       "(default 8); --steps is the same flag.", flag_values=flag_values)
  flags.DEFINE_alias("steps", "maskgit_steps", flag_values=flag_values)
  flags.DEFINE_float("choice_temperature", None, "MaskGIT priors: the Gumbel temperature of "
                     "which tokens to keep, annealed to 0 (default 4.5).",
                     flag_values=flag_values)


def sampling_flags_given(flag_values: flags.FlagValues = flags.FLAGS) -> dict:
  """{name: value} of the sampling flags set on the command line."""
  return {name: flag_values[name].value for name in SAMPLING_FLAGS
          if flag_values[name].present}
