"""Whether a restart's config may resume a workdir that another config started.

A restart compares its config with the workdir's config.json before touching anything:

  safe fields    change how long, how often and how loudly a run goes, not what its
                 state is or means: step counts, the learning-rate schedule, logging,
                 checkpoint and evaluation intervals and settings, sampling settings,
                 paths that moved. A change resumes only with
                 --config.train.allow_config_change=true, with a warning listing it.
  other fields   the model, quantizer, data shapes and order, optimizer structure, seeds,
                 the tokenizer a prior models: a change refuses to resume whatever the
                 flag says; use a new --workdir (or the config that wrote the workdir).
  ignored        the distributed set-up (each process of a pod has its own process_id).
"""
from __future__ import annotations

from typing import Any, Mapping

from absl import logging
import ml_collections

ALLOW_FLAG = "train.allow_config_change"
SAFE_FIELDS = (
    "train.num_steps", "train.log_every_steps", "train.checkpoint_every_steps",
    "train.keep_checkpoints", "train.eval_every_steps", "train.grid_examples",
    "train.num_samples", "train.fid_samples", "train.temperature", "train.top_k",
    "train.top_p", ALLOW_FLAG, "train.guidance_scale", "train.guidance_ramp",
    "train.maskgit_steps", "train.choice_temperature", "train.eval_mask_ratios",
    "optimizer.learning_rate", "optimizer.warmup_steps", "optimizer.schedule",
    "optimizer.end_learning_rate_fraction", "optimizer.grad_clip_norm",
    "discriminator_optimizer.learning_rate", "discriminator_optimizer.warmup_steps",
    "discriminator_optimizer.schedule", "discriminator_optimizer.end_learning_rate_fraction",
    "discriminator_optimizer.grad_clip_norm",
    "data.eval_split", "data.eval_batch_size", "data.variance_examples", "data.data_dir",
    "data.download", "lpips.weights", "top_prior_workdir",
)
# Where a process runs, not what the run is: every process of a pod has its own id.
IGNORED = (ALLOW_FLAG, "distributed")
# Fields added after runs were saved without them: a saved config that lacks one had this
# value (so an old workdir resumes with the field set to it).
DEFAULTS_OF_NEW_FIELDS = {"model.label_dropout_rate": 0.0, "train.label_smoothing": 0.0,
                          "train.guidance_ramp": False, "train.fid_samples": 10_000}


class ConfigChangeError(ValueError):
  """A restart's config differs from the workdir's in a way that may not resume."""


def differences(old: Mapping[str, Any], new: Mapping[str, Any],
                prefix: str = "") -> list[tuple[str, Any, Any]]:
  """(dotted field, old value, new value) of every leaf that differs; missing: None."""
  found = []
  for key in sorted(set(old) | set(new)):
    path = f"{prefix}{key}"
    a, b = old.get(key, DEFAULTS_OF_NEW_FIELDS.get(path)), new.get(key)
    if isinstance(a, Mapping) and isinstance(b, Mapping):
      found += differences(a, b, path + ".")
    elif _normal(a) != _normal(b):
      found.append((path, a, b))
  return found


def is_safe(field: str) -> bool:
  return _within(field, SAFE_FIELDS)


def _within(field: str, prefixes) -> bool:
  return any(field == prefix or field.startswith(prefix + ".") for prefix in prefixes)


def check_resume(saved: ml_collections.ConfigDict, config: ml_collections.ConfigDict, *,
                 workdir: str) -> None:
  """Raises ConfigChangeError listing each differing field and the ways out, unless config
  may resume the run that saved `saved` (see the module docstring)."""
  changes = [change for change in differences(saved.to_dict(), config.to_dict())
             if not _within(change[0], IGNORED)]
  if not changes:
    return
  unsafe = [change for change in changes if not is_safe(change[0])]
  listing = lambda items: "\n".join(f"  {field}: {old!r} -> {new!r}" for field, old, new in items)
  if unsafe:
    raise ConfigChangeError(
        f"{workdir} was trained with another config, and these fields change what its "
        f"checkpoints hold or mean:\n{listing(unsafe)}\nNothing was changed. Use a new "
        f"--workdir for this config, or run again with the config that wrote {workdir} "
        "(its config.json).")
  allowed = bool(config.train.get("allow_config_change", False))
  if not allowed:
    raise ConfigChangeError(
        f"{workdir} was trained with another config; these fields differ:\n"
        f"{listing(changes)}\nThey can change safely: pass "
        f"--config.{ALLOW_FLAG}=true to resume with them, or use a new --workdir. "
        "Nothing was changed.")
  logging.warning("resuming %s with a changed config (allowed by %s):\n%s", workdir,
                  ALLOW_FLAG, listing(changes))


def _normal(value):
  """Lists and tuples alike (a config read back from JSON holds lists)."""
  if isinstance(value, (list, tuple)):
    return [_normal(item) for item in value]
  return value
