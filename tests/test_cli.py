"""experiments/cli.py: a stray argument on any entry point's command line names the flag
syntax."""
from absl import app
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


@pytest.mark.parametrize("module", ["train", "train_prior", "evaluate", "sample", "quickstart"])
def test_every_entry_point_checks_its_arguments(module):
  source = open(f"experiments/{module}.py").read()
  assert "cli.check_no_arguments(argv" in source
