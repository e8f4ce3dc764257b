r"""Converts a taming-transformers VQGAN checkpoint into a vqjax tokenizer workdir.

Reads a Lightning .ckpt (its state_dict) or a plain .pth/.pt state_dict without torch,
and taming's YAML config (model.params: ddconfig, n_embed, embed_dim, lossconfig); writes
--workdir as a training run would (config.json, the checkpoint at step 0, and
conversion.json listing the checkpoint keys it did not use and why). The data and training
settings come from --base_config (default: vqgan_imagenet256_f16.py, ImageNet at 256).

  python -m experiments.convert_taming --checkpoint=last.ckpt --config=model.yaml \
      --workdir=workdir/taming_f16_1024
  python -m experiments.evaluate --workdir=workdir/taming_f16_1024
  python -m experiments.train --config=experiments/configs/from_workdir.py:workdir/taming_f16_1024 \
      --workdir=workdir/taming_f16_1024       # fine-tunes, from step 0, with taming's loss
"""
import os
import sys

from absl import flags
from ml_collections import config_flags

from experiments import cli

FLAGS = flags.FLAGS
BASE_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs",
                           "vqgan_imagenet256_f16.py")


def read_taming_config(path: str) -> dict:
  """taming's YAML (JSON is YAML too) as a dict; a ValueError naming the fix otherwise."""
  import yaml  # pylint: disable=import-outside-toplevel
  try:
    with open(path) as file:
      tree = yaml.safe_load(file)
  except OSError as error:
    raise ValueError(f"--config={path} cannot be read ({error}); pass taming's model "
                     "YAML") from None
  except yaml.YAMLError as error:
    raise ValueError(f"--config={path} is not YAML ({error}); pass taming's model "
                     "YAML") from None
  if not isinstance(tree, dict):
    raise ValueError(f"--config={path} holds a {type(tree).__name__}, not taming's "
                     "{model: {target, params}} config")
  return tree


def run(checkpoint: str, taming_config: str, workdir: str, base_config):
  """Converts (see the module docstring); returns the TamingConversion."""
  from vqjax.runner import taming_workdir  # pylint: disable=import-outside-toplevel
  conversion = taming_workdir.convert_to_workdir(
      checkpoint, read_taming_config(taming_config), workdir, base_config)
  print(f"wrote {workdir}: config.json, the checkpoint at step 0 and "
        f"{taming_workdir.CONVERSION_FILE}; {len(conversion.unused_keys)} checkpoint keys "
        "unused (listed there)", file=sys.stderr)
  for note in conversion.notes:
    print(f"  {note}", file=sys.stderr)
  return conversion


def main(argv):
  cli.check_no_arguments(argv, "--checkpoint=last.ckpt --config=model.yaml --workdir=DIR")
  cli.setup_console()
  run(FLAGS.checkpoint, FLAGS.config, FLAGS.workdir, FLAGS.base_config)


def define_flags():
  # Defined only when run as a program (as experiments/sample.py), so that tests import
  # this module beside the other entry points without defining --config twice.
  flags.DEFINE_string("checkpoint", None, "taming's last.ckpt, or a .pth/.pt state_dict.")
  flags.DEFINE_string("config", None, "taming's YAML config of the model (e.g. "
                      "vqgan_imagenet_f16_1024's model.yaml), or a YAML/JSON of model.params.")
  flags.DEFINE_string("workdir", None, "The new tokenizer workdir to write (must be empty).")
  config_flags.DEFINE_config_file("base_config", BASE_CONFIG, "The vqjax config giving the "
                                  "data, optimizers and training settings, "
                                  "path/to/config.py[:arg].")
  flags.mark_flags_as_required(["checkpoint", "config", "workdir"])


if __name__ == "__main__":
  define_flags()
  cli.run(main)
