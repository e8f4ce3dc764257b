"""taming-transformers VQGAN checkpoints as vqjax VQGAN variables, and back: pure mappings.

    read_checkpoint(path)           a Lightning .ckpt ({'state_dict': ...}) or a plain
                                    .pth/.pt state_dict -> TamingCheckpoint (NumPy arrays
                                    by taming's names), read without torch
    taming_architecture(params)     taming's `model.params` (ddconfig, n_embed, embed_dim)
                                    -> TamingArchitecture: vqjax's config.model fields, the
                                    image side and the quantizer loss weights of taming's loss
    to_vqgan_variables(state_dict, model_params_shapes)   -> Conversion: {'params': ...}
                                    for vqjax.models.VQGAN, and the keys left unused
    to_taming_state_dict(params)    the reverse: vqjax VQGAN params -> {taming name: array}
    discriminator_variables(state_dict, num_layers)   taming's NLayerDiscriminator (batch
                                    norm) -> PatchGANDiscriminator variables

How the architectures meet, exactly: taming's modules and vqjax.models.taming have the
same blocks (GroupNorm of 32 groups and epsilon 1e-6, the (0, 1, 0, 1) padding of the
stride-2 downsample, nearest upsampling, single-head attention scaled by C ** -0.5), and
quant_conv / post_quant_conv are VQGAN's pre_quantization / post_quantization 1x1 convs.
Every parameter is renamed, and conv weights go from torch's OIHW to Flax's HWIO. What
vqjax does and taming cannot is refused: widths that are not multiples of 32 (vqjax
falls back to fewer GroupNorm groups), double_z, resamp_with_conv=False, tanh_out, other
attention types, index remapping. Taming places attention by ddconfig's `resolution`,
vqjax by the actual feature-map side, so the model equals taming's at image side
`resolution` (TamingArchitecture.image_size), where its parameters are taming's.

VectorQuantizer2's loss with legacy=True (taming's default): mean((sg(z_q) - z)^2) +
beta * mean((z_q - sg(z))^2), beta on the codebook term. vqjax puts beta on the
commitment term, so the converted quantizer has beta=1 and quantizer_loss_weights
{'codebook_loss': beta}; legacy=False is vqjax's own convention (beta as it is).
"""
from __future__ import annotations

import re
from typing import Any, Mapping, NamedTuple

import numpy as np
from flax import traverse_util

from vqjax.models import pickled_weights

TAMING_BETA = 0.25  # taming's VQModel builds VectorQuantizer2(..., beta=0.25)
GROUPS = 32         # taming's Normalize: GroupNorm(32, channels, eps=1e-6)
MODEL_PREFIXES = ("encoder.", "decoder.", "quantize.", "quant_conv.", "post_quant_conv.")
DISCRIMINATOR_PREFIX = "loss.discriminator."
_CKPT_WHAT = "a taming-transformers checkpoint (a Lightning .ckpt or a torch.save state_dict)"


class TamingCheckpoint(NamedTuple):
  state_dict: dict[str, np.ndarray]  # taming's names -> arrays as stored
  global_step: int | None            # the Lightning step, where the file has it
  stubbed_globals: tuple[str, ...]   # other pickled objects, not loaded (callbacks, ...)


def read_checkpoint(path: str) -> TamingCheckpoint:
  """The state_dict of a Lightning .ckpt (its 'state_dict') or of a plain torch.save'd
  state_dict, as NumPy arrays; every other object in the file is left a stub, never
  run, and no tensor outside the state_dict is read."""
  with pickled_weights.open_torch_file(path, what=_CKPT_WHAT, stub_unknown=True) as loaded:
    root = loaded.root
    if not isinstance(root, Mapping):
      raise ValueError(f"{path} holds a {type(root).__name__}, not a state_dict or a "
                       "Lightning checkpoint dict; save model.state_dict() with torch.save")
    state = root.get("state_dict", root)
    if not isinstance(state, Mapping):
      raise ValueError(f"{path}: its 'state_dict' is a {type(state).__name__}, not a dict")
    step = root.get("global_step") if "state_dict" in root else None
    tensors, others = {}, []
    for key, value in state.items():
      if isinstance(value, pickled_weights.TorchTensor):
        tensors[str(key)] = value.numpy()
      else:
        others.append(str(key))
    if others:
      raise ValueError(f"{path}: state_dict entries {others[:5]} are not tensors; this is "
                       "not a taming-transformers VQModel state_dict")
  return TamingCheckpoint(tensors, step if isinstance(step, int) else None,
                          tuple(sorted(loaded.stubbed_globals)))


class TamingArchitecture(NamedTuple):
  model: dict                  # config.model fields (vqjax.runner.build.build_model)
  image_size: int              # ddconfig's resolution: where attention sits as in taming
  quantizer_loss_weights: dict  # config.train.quantizer_loss_weights: taming's loss


def model_params_of(config: Mapping[str, Any]) -> dict:
  """taming's `model.params` from a whole YAML config ({'model': {'target', 'params'}}) or
  from model.params itself; refuses other first-stage models with the reason."""
  config = dict(config)
  if "model" in config:
    model = dict(config["model"])
    target = model.get("target", "")
    if target and not target.endswith((".VQModel", ".VQModelInterface")):
      raise ValueError(f"model.target is {target}; only taming's (or latent-diffusion's) "
                       "VQModel with VectorQuantizer2 converts (GumbelVQ and EMAVQ have "
                       "other quantizers)")
    config = dict(model.get("params", {}))
  return config


def _check_width(ddconfig: Mapping[str, Any]) -> None:
  widths = [ddconfig["ch"] * m for m in (1, *ddconfig["ch_mult"])]
  odd = sorted({w for w in widths if w % GROUPS})
  if odd:
    raise ValueError(f"ddconfig ch={ddconfig['ch']} with ch_mult={list(ddconfig['ch_mult'])} "
                     f"gives widths {odd}, not multiples of {GROUPS}: taming's GroupNorm(32) "
                     "cannot build that model, so this config did not come from taming")


_UNSUPPORTED = {  # ddconfig field: (the value taming's VQModel uses, why another fails)
    "double_z": (False, "a VQ model's encoder outputs z_channels, not a mean and variance"),
    "resamp_with_conv": (True, "vqjax downsamples and upsamples with convs only"),
    "tanh_out": (False, "vqjax's decoder has no tanh"),
    "give_pre_end": (False, "vqjax's decoder always ends in conv_out"),
    "attn_type": ("vanilla", "vqjax has taming's vanilla attention only"),
    "use_linear_attn": (False, "vqjax has taming's vanilla attention only"),
}


def taming_architecture(params: Mapping[str, Any]) -> TamingArchitecture:
  """vqjax's model config for taming's model.params (or a whole YAML config, see
  model_params_of): ddconfig, n_embed, embed_dim, optional remap (refused)."""
  params = model_params_of(params)
  missing = [k for k in ("ddconfig", "n_embed", "embed_dim") if k not in params]
  if missing:
    raise ValueError(f"the taming config lacks {', '.join(missing)}; give model.params of "
                     "taming's YAML (ddconfig, n_embed, embed_dim)")
  dd = dict(params["ddconfig"])
  lacking = [k for k in ("ch", "ch_mult", "num_res_blocks", "attn_resolutions", "z_channels",
                         "resolution", "in_channels", "out_ch") if k not in dd]
  if lacking:
    raise ValueError(f"ddconfig lacks {', '.join(lacking)}")
  for field, (value, why) in _UNSUPPORTED.items():
    if dd.get(field, value) != value:
      raise ValueError(f"ddconfig {field}={dd[field]!r} cannot be converted: {why}")
  if params.get("remap") is not None:
    raise ValueError("remap is set: the checkpoint's quantizer maps indices to a subset of "
                     "its codebook, which vqjax does not; convert a model without remap")
  if dd["in_channels"] != dd["out_ch"]:
    raise ValueError(f"in_channels={dd['in_channels']} but out_ch={dd['out_ch']}; a vqjax "
                     "VQGAN reconstructs the images it encodes (one image_channels)")
  _check_width(dd)
  beta = float(params.get("beta", TAMING_BETA))
  legacy = bool(params.get("legacy", True))
  model = dict(
      name="vqgan", image_channels=int(dd["in_channels"]), embedding_dim=int(params["embed_dim"]),
      channels=int(dd["ch"]), channel_multipliers=tuple(int(m) for m in dd["ch_mult"]),
      num_res_blocks=int(dd["num_res_blocks"]),
      attention_resolutions=tuple(int(r) for r in dd["attn_resolutions"]),
      z_channels=int(dd["z_channels"]), dropout_rate=float(dd.get("dropout", 0.0)),
      dtype="float32",
      quantizer=dict(name="vq", codebook_size=int(params["n_embed"]),
                     dim=int(params["embed_dim"]), beta=1.0 if legacy else beta,
                     ema_decay=None, dead_code_threshold=0.0))
  weights = {"codebook_loss": beta} if legacy else {}
  return TamingArchitecture(model, int(dd["resolution"]), weights)


# vqjax names -> taming names, applied to each part of a '/'-joined params path.
_PARTS = [(re.compile(r"^(down|up)(\d+)_(block|attn)(\d+)$"), r"\1.\2.\3.\4"),
          (re.compile(r"^down(\d+)_downsample$"), r"down.\1.downsample"),
          (re.compile(r"^up(\d+)_upsample$"), r"up.\1.upsample"),
          (re.compile(r"^mid_block(\d)$"), lambda m: f"mid.block_{int(m[1]) + 1}"),
          (re.compile(r"^mid_attn$"), "mid.attn_1"),
          (re.compile(r"^shortcut$"), "nin_shortcut")]
_TOP = {"pre_quantization": "quant_conv", "post_quantization": "post_quant_conv",
        "output_layer": "decoder.conv_out", "quantizer": "quantize"}
_LEAVES = {"kernel": "weight", "scale": "weight", "bias": "bias", "codebook": "embedding.weight"}


def taming_name(path: tuple[str, ...]) -> str:
  """The taming state_dict key of a vqjax VQGAN params path, e.g. ('encoder',
  'down0_block1', 'norm1', 'scale') -> 'encoder.down.0.block.1.norm1.weight'."""
  *modules, leaf = path
  parts = [_TOP.get(modules[0], modules[0])] if modules else []
  for module in modules[1:]:
    for pattern, replacement in _PARTS:
      if pattern.match(module):
        module = pattern.sub(replacement, module)
        break
    parts.append(module)
  return ".".join(parts + [_LEAVES[leaf]])


def _to_flax(leaf: str, value: np.ndarray) -> np.ndarray:
  return value.transpose(2, 3, 1, 0) if leaf == "kernel" else value  # OIHW -> HWIO


def _to_torch(leaf: str, value: np.ndarray) -> np.ndarray:
  return value.transpose(3, 2, 0, 1) if leaf == "kernel" else value  # HWIO -> OIHW


class Conversion(NamedTuple):
  variables: dict    # {'params': nested float32 NumPy arrays}
  unused_keys: list  # state_dict keys that no parameter took (discriminator, LPIPS, ...)


def _convert(state_dict: Mapping[str, np.ndarray], shapes: Mapping[tuple, tuple],
             names) -> tuple[dict, set]:
  """{path: array} for every path of shapes, from state_dict[names(path)]; (that, used)."""
  flat, used, missing, wrong = {}, set(), [], []
  for path, shape in shapes.items():
    key = names(path)
    if key not in state_dict:
      missing.append(f"{key} (for {'/'.join(path)})")
      continue
    used.add(key)
    value = _to_flax(path[-1], np.asarray(state_dict[key]))
    if value.shape != tuple(shape):
      wrong.append(f"{key}: {value.shape} (after OIHW -> HWIO), the model needs {tuple(shape)}")
      continue
    flat[path] = value.astype(np.float32)
  if missing:
    raise ValueError(f"the checkpoint lacks {len(missing)} key(s) the model needs: "
                     f"{', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}; it is not "
                     "the model this config describes (check ddconfig, n_embed, embed_dim)")
  if wrong:
    raise ValueError(f"checkpoint shapes differ from the config's model: {'; '.join(wrong[:8])}"
                     "; check ddconfig, n_embed and embed_dim")
  return flat, used


def to_vqgan_variables(state_dict: Mapping[str, np.ndarray],
                       param_shapes: Mapping[str, Any]) -> Conversion:
  """VQGAN variables from a taming VQModel state_dict. param_shapes: the model's params
  (arrays or shapes, nested as model.init gives them, at image side `image_size`).
  Raises ValueError naming any key the model needs and the state_dict lacks, and any
  encoder/decoder/quantizer key the model has no place for (another architecture)."""
  shapes = {path: tuple(getattr(leaf, "shape", leaf))
            for path, leaf in traverse_util.flatten_dict(dict(param_shapes)).items()}
  flat, used = _convert(state_dict, shapes, taming_name)
  unused = sorted(set(state_dict) - used)
  foreign = [key for key in unused if key.startswith(MODEL_PREFIXES)]
  if foreign:
    raise ValueError(f"the checkpoint has model weights with no place in the config's model: "
                     f"{', '.join(foreign[:8])}; the config does not describe this checkpoint "
                     "(check ddconfig's attn_resolutions, resolution, num_res_blocks, ch_mult)")
  return Conversion({"params": traverse_util.unflatten_dict(flat)}, unused)


def to_taming_state_dict(params: Mapping[str, Any]) -> dict[str, np.ndarray]:
  """vqjax VQGAN params -> {taming state_dict key: float32 array in torch's layout}, which
  torch.load_state_dict takes after torch.from_numpy (taming's VQModel has no other
  generator tensors)."""
  flat = traverse_util.flatten_dict(dict(params))
  return {taming_name(path): np.array(_to_torch(path[-1], np.asarray(value, np.float32)),
                                      order="C", copy=True)
          for path, value in flat.items()}


def discriminator_names(num_layers: int):
  """vqjax PatchGAN (batch norm) path -> taming's NLayerDiscriminator key: its Sequential
  `main` is conv, LeakyReLU, then (conv, BatchNorm, LeakyReLU) per layer, then the logits."""
  def name(path: tuple[str, ...]) -> str:
    module, leaf = path
    if module == "logits":
      index = 3 * num_layers + 2
    else:
      n = int(module[-1])
      index = 0 if module == "conv0" else 3 * n - 1 if module.startswith("conv") else 3 * n
    torch_leaf = {"kernel": "weight", "scale": "weight", "bias": "bias", "mean": "running_mean",
                  "var": "running_var"}[leaf]
    return f"{DISCRIMINATOR_PREFIX}main.{index}.{torch_leaf}"
  return name


def discriminator_variables(state_dict: Mapping[str, np.ndarray], num_layers: int,
                            shapes: Mapping[str, Any]) -> Conversion:
  """PatchGANDiscriminator(norm='batch') variables {'params', 'batch_stats'} from taming's
  loss.discriminator.* (NLayerDiscriminator with BatchNorm2d). shapes: the discriminator's
  variables as init gives them. torch's running_var is the unbiased estimate and vqjax's
  update mixes in biased batch variances: they differ by n / (n - 1), n = B * H * W per
  channel, and only evaluation with train=False reads them. unused_keys: the
  discriminator's num_batches_tracked."""
  flat_shapes = {path: tuple(getattr(leaf, "shape", leaf))
                 for path, leaf in traverse_util.flatten_dict(dict(shapes)).items()}
  names = discriminator_names(num_layers)
  flat, used = _convert(state_dict, flat_shapes, lambda path: names(path[1:]))
  unused = sorted(k for k in set(state_dict) - used if k.startswith(DISCRIMINATOR_PREFIX))
  return Conversion(traverse_util.unflatten_dict(flat), unused)
