"""experiments/cli.py: a stray argument on any entry point's command line names the flag
syntax; --help is fast and exits 0; a folder of runs names the subfolder; the quiet console."""
import json
import logging
import os
import re
import subprocess
import sys

from absl import app, flags
import pytest

from experiments import cli

EXAMPLE = "--config=experiments/configs/digits.py --workdir=DIR"


def test_no_arguments_pass():
  cli.check_no_arguments(["train"], EXAMPLE)


def test_an_extra_argument_names_the_flag_syntax():
  with pytest.raises(app.UsageError, match="unexpected argument 'foo'; flags are given as "
                                           "--name=value, e.g. --config=experiments/configs/"
                                           "digits.py --workdir=DIR"):
    cli.check_no_arguments(["train", "foo"], EXAMPLE)


def test_a_flag_without_dashes_is_named():
  with pytest.raises(app.UsageError, match=r"'workdir=/tmp/x' \(did you mean --workdir=/tmp/x\?\)"):
    cli.check_no_arguments(["train", "workdir=/tmp/x"], EXAMPLE)


def test_a_boolean_flags_separate_value_is_named():
  with pytest.raises(app.UsageError, match="a boolean flag takes no separate value"):
    cli.check_no_arguments(["evaluate", "false"], "--workdir=DIR")


@pytest.mark.parametrize("module", ["train", "train_prior", "evaluate", "sample", "quickstart",
                                    "convert_taming", "quantizer_table", "prior_table"])
def test_every_entry_point_checks_its_arguments(module):
  source = open(f"experiments/{module}.py").read()
  assert "cli.check_no_arguments(argv" in source


@pytest.mark.parametrize("module", ["train", "train_prior", "evaluate", "sample", "quickstart",
                                    "convert_taming", "quantizer_table", "prior_table"])
def test_help_exits_0_without_importing_tensorflow_or_jax(module):
  probe = (f"import runpy, sys\nsys.argv = ['{module}', '--help']\ncode = None\n"
           f"try:\n  runpy.run_module('experiments.{module}', run_name='__main__')\n"
           "except SystemExit as error:\n  code = error.code\n"
           "print('RESULT', code, 'tensorflow' in sys.modules, 'jax' in sys.modules)\n")
  result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=False)
  assert result.stdout.splitlines()[-1] == "RESULT 0 False False", result.stderr[-2000:]
  assert "--workdir" in result.stdout  # the flags were listed


def _run(directory, config):
  directory.mkdir(parents=True)
  (directory / "config.json").write_text(json.dumps(config))


def test_a_folder_of_runs_names_the_subfolder_to_pass(tmp_path):
  _run(tmp_path / "tokenizer", {"model": {}})
  _run(tmp_path / "prior", {"tokenizer_workdir": str(tmp_path / "tokenizer")})
  with pytest.raises(app.UsageError, match=rf"has no config.json: it is a folder of runs, "
                     rf"prior/ \(a prior\), tokenizer/ \(a tokenizer\), not a run; evaluate "
                     rf"reads a tokenizer's \(experiments.train\) workdir: pass "
                     rf"--workdir={tmp_path}/tokenizer$"):
    cli.check_run_workdir(str(tmp_path), command="evaluate", prior=False)
  with pytest.raises(app.UsageError, match=rf"pass --workdir={tmp_path}/prior$"):
    cli.check_run_workdir(str(tmp_path), command="sample", prior=True)
  cli.check_run_workdir(str(tmp_path / "prior"), command="sample", prior=True)  # a run
  cli.check_run_workdir(str(tmp_path / "missing"), command="sample", prior=True)


def test_the_quiet_console_keeps_own_lines_and_warnings():
  keep = cli.OwnLinesOrWarnings()

  def record(path, level, message="message"):
    return logging.LogRecord("absl", level, path, 1, message, None, None)

  own = os.path.join(os.path.dirname(cli.__file__), "..", "vqjax", "runner", "loop.py")
  assert keep.filter(record(os.path.abspath(own), logging.INFO))
  assert not keep.filter(record("/site-packages/orbax/checkpoint_manager.py", logging.INFO))
  assert keep.filter(record("/site-packages/orbax/checkpoint_manager.py", logging.WARNING))
  assert not keep.filter(record("/site-packages/orbax/checkpoint_manager.py", logging.WARNING,
                                "Given directory is read only=%s"))
  line = cli.ConsoleFormatter().format(record("x.py", logging.WARNING, "careful"))
  assert re.fullmatch(r"\d\d:\d\d:\d\d WARNING: careful", line)


def test_steps_is_the_maskgit_steps_flag_and_counts_as_given():
  flag_values = flags.FlagValues()
  cli.define_sampling_flags(temperature=None, flag_values=flag_values)
  flag_values(["sample", "--steps=12", "--guidance_scale=2"])
  assert flag_values.maskgit_steps == 12
  assert cli.sampling_flags_given(flag_values) == {"maskgit_steps": 12, "guidance_scale": 2.0}


def test_no_sampling_flags_given_is_empty():
  flag_values = flags.FlagValues()
  cli.define_sampling_flags(temperature=1.0, flag_values=flag_values)
  flag_values(["sample"])
  assert flag_values.temperature == 1.0 and cli.sampling_flags_given(flag_values) == {}
