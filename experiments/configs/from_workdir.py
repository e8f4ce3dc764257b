r"""The config a workdir was written with (its config.json), to go on training it: a
tokenizer converted from taming-transformers (experiments.convert_taming) fine-tunes with

  python -m experiments.train --config=experiments/configs/from_workdir.py:DIR --workdir=DIR

Fields changed on the command line are checked against the workdir's config as any
restart's are (vqjax.runner.config_drift): safe ones (e.g. --config.train.num_steps=1000)
need --config.train.allow_config_change=true.
"""
from __future__ import annotations

import ml_collections

from vqjax.runner import workdir as workdir_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  if not arg:
    raise ValueError("from_workdir.py needs the workdir whose config.json to read: "
                     "--config=experiments/configs/from_workdir.py:DIR")
  return workdir_lib.load_config(workdir_lib.absolute_path(arg))
