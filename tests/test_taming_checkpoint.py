"""Tests for vqjax.models.taming_checkpoint: taming-transformers VQGAN checkpoints, read
without torch, equal vqjax's VQGAN exactly (z_e, indices, decoded images), and back.

The proof builds taming's own modules with random weights (needs torch and
taming-transformers: pip install -e .[bench]; skipped without them). Without them, CI
checks a file torch wrote and the outputs taming recorded (tests/record_taming_reference.py).
"""
import os
import pickle
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import record_taming_reference
from vqjax.models import taming_checkpoint as tc
from vqjax.runner.build import build_model

TOLERANCE = 1e-4


def _model_and_shapes(architecture: tc.TamingArchitecture):
  model = build_model(architecture.model, axis_name=None)
  size, channels = architecture.image_size, architecture.model["image_channels"]
  x = jax.ShapeDtypeStruct((1, size, size, channels), jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
  return model, variables["params"]


def _vqjax_outputs(model, variables, images):
  def run(m, x):
    z_e = m.pre_quantization(m.encoder(x, train=False))
    indices = m.quantizer(z_e, train=False).indices
    return z_e, indices, m.decode_indices(indices)
  z_e, indices, decoded = jax.jit(lambda v, x: model.apply(v, x, method=run))(variables, images)
  return {"z_e": np.asarray(z_e), "indices": np.asarray(indices), "decoded": np.asarray(decoded)}


def _tiny_architecture():
  return tc.taming_architecture(dict(
      ddconfig=dict(double_z=False, z_channels=16, resolution=8, in_channels=3, out_ch=3,
                    ch=32, ch_mult=[1, 2], num_res_blocks=1, attn_resolutions=[4],
                    dropout=0.0), n_embed=16, embed_dim=8))


# Without torch: names, the reverse direction, config checks, safe unpickling.

def test_every_param_has_a_taming_name_and_the_round_trip_is_exact():
  architecture = _tiny_architecture()
  model, shapes = _model_and_shapes(architecture)
  params = model.init(jax.random.key(1), jnp.zeros((1, 8, 8, 3)), train=False)["params"]
  state_dict = tc.to_taming_state_dict(params)
  assert "encoder.down.0.block.0.norm1.weight" in state_dict
  assert "decoder.up.1.attn.0.q.weight" in state_dict and "decoder.conv_out.bias" in state_dict
  assert state_dict["quant_conv.weight"].shape == (8, 16, 1, 1)  # OIHW
  assert state_dict["quantize.embedding.weight"].shape == (16, 8)
  back = tc.to_vqgan_variables(state_dict, shapes)
  assert back.unused_keys == []
  jax.tree.map(np.testing.assert_array_equal, back.variables["params"],
               jax.tree.map(np.asarray, params))


def test_a_missing_key_is_an_error_naming_it():
  architecture = _tiny_architecture()
  model, shapes = _model_and_shapes(architecture)
  state_dict = tc.to_taming_state_dict(jax.tree.map(np.zeros_like, jax.tree.map(
      lambda s: np.zeros(s.shape, np.float32), shapes)))
  del state_dict["decoder.mid.attn_1.proj_out.weight"]
  with pytest.raises(ValueError, match=r"lacks 1 key.*decoder\.mid\.attn_1\.proj_out\.weight"):
    tc.to_vqgan_variables(state_dict, shapes)


def test_unused_keys_are_listed_and_foreign_model_keys_refused():
  _, shapes = _model_and_shapes(_tiny_architecture())
  state_dict = tc.to_taming_state_dict(jax.tree.map(
      lambda s: np.zeros(s.shape, np.float32), shapes))
  extra = {"loss.discriminator.main.0.weight": np.zeros((8, 3, 4, 4), np.float32),
           "loss.perceptual_loss.net.slice1.0.weight": np.zeros((64, 3, 3, 3), np.float32)}
  assert tc.to_vqgan_variables({**state_dict, **extra}, shapes).unused_keys == sorted(extra)
  attention = {"encoder.down.0.attn.0.q.weight": np.zeros((32, 32, 1, 1), np.float32)}
  with pytest.raises(ValueError, match=r"no place .*encoder\.down\.0\.attn\.0\.q\.weight.*"
                     "attn_resolutions"):
    tc.to_vqgan_variables({**state_dict, **attention}, shapes)


@pytest.mark.parametrize("change, message", [
    (dict(ch=48), r"widths \[48\], not multiples of 32"),
    (dict(double_z=True), "double_z=True cannot be converted"),
    (dict(tanh_out=True), "tanh_out=True"),
    (dict(attn_type="linear"), "vanilla attention only"),
    (dict(out_ch=1), "in_channels=3 but out_ch=1"),
])
def test_configs_taming_could_not_have_produced_are_refused(change, message):
  dd = dict(double_z=False, z_channels=16, resolution=8, in_channels=3, out_ch=3, ch=32,
            ch_mult=[1, 2], num_res_blocks=1, attn_resolutions=[4], dropout=0.0)
  with pytest.raises(ValueError, match=message):
    tc.taming_architecture(dict(ddconfig={**dd, **change}, n_embed=16, embed_dim=8))


def test_remap_and_other_models_are_refused():
  dd = dict(double_z=False, z_channels=16, resolution=8, in_channels=3, out_ch=3, ch=32,
            ch_mult=[1, 2], num_res_blocks=1, attn_resolutions=[4])
  with pytest.raises(ValueError, match="remap"):
    tc.taming_architecture(dict(ddconfig=dd, n_embed=16, embed_dim=8, remap="used.npy"))
  with pytest.raises(ValueError, match=r"GumbelVQ; only taming's \(or latent-diffusion's\) "
                     "VQModel"):
    tc.taming_architecture({"model": {"target": "taming.models.vqgan.GumbelVQ",
                                      "params": dict(ddconfig=dd, n_embed=16, embed_dim=8)}})


def test_the_quantizer_loss_convention_follows_legacy():
  base = dict(ddconfig=dict(double_z=False, z_channels=16, resolution=8, in_channels=3,
                            out_ch=3, ch=32, ch_mult=[1, 2], num_res_blocks=1,
                            attn_resolutions=[4]), n_embed=16, embed_dim=8)
  legacy = tc.taming_architecture(base)  # taming's default: beta on the codebook term
  assert legacy.model["quantizer"]["beta"] == 1.0
  assert legacy.quantizer_loss_weights == {"codebook_loss": 0.25}
  fixed = tc.taming_architecture({**base, "legacy": False, "beta": 0.5})
  assert fixed.model["quantizer"]["beta"] == 0.5 and fixed.quantizer_loss_weights == {}


# Recorded from taming (tests/record_taming_reference.py): checked without torch, in CI too.

def test_reads_a_lightning_checkpoint_that_torch_wrote():
  checkpoint = tc.read_checkpoint(record_taming_reference.WRITTEN)
  expected = record_taming_reference.written_arrays()
  assert sorted(checkpoint.state_dict) == sorted(expected)
  for name, value in expected.items():
    got = checkpoint.state_dict[name]
    assert got.shape == value.shape, name
    np.testing.assert_array_equal(got.astype(np.float32), value.astype(np.float32), name)
  assert checkpoint.state_dict["half"].dtype == np.float16
  assert checkpoint.global_step == 7
  assert "argparse.Namespace" in checkpoint.stubbed_globals  # the hyper-parameters, not run


def test_reproduces_the_outputs_taming_recorded():
  recorded = np.load(record_taming_reference.REFERENCE)
  architecture = tc.taming_architecture(record_taming_reference.CONFIG)
  model, shapes = _model_and_shapes(architecture)
  state_dict = tc.to_taming_state_dict(record_taming_reference.reference_params())
  conversion = tc.to_vqgan_variables(state_dict, shapes)
  got = _vqjax_outputs(model, conversion.variables, recorded["images"])
  np.testing.assert_array_equal(got["indices"], recorded["indices"])
  for name in ("z_e", "decoded"):
    np.testing.assert_allclose(got[name], recorded[name], atol=TOLERANCE, rtol=0)


# taming's own model (torch): the proof.

def _taming():
  pytest.importorskip("torch", reason="the proof builds taming's model: pip install -e .[bench]")
  pytest.importorskip("taming", reason="needs taming-transformers: pip install -e .[bench]")
  import taming_testing  # pylint: disable=import-outside-toplevel
  return taming_testing


def _check_equal(taming_model, path, config, size, batch=2):
  taming_testing = _taming()
  checkpoint = tc.read_checkpoint(path)
  architecture = tc.taming_architecture(config)
  assert architecture.image_size == size
  model, shapes = _model_and_shapes(architecture)
  conversion = tc.to_vqgan_variables(checkpoint.state_dict, shapes)
  images = taming_testing.images(size, batch=batch)
  expected = taming_model.outputs(images)
  got = _vqjax_outputs(model, conversion.variables, images)
  np.testing.assert_array_equal(got["indices"], expected["indices"])
  differences = {name: float(np.max(np.abs(got[name] - expected[name])))
                 for name in ("z_e", "decoded")}
  assert max(differences.values()) <= TOLERANCE, differences
  return conversion, checkpoint, differences


@pytest.mark.parametrize("lightning", [False, True], ids=["pth", "ckpt"])
@pytest.mark.parametrize("name", ["TINY_F16", "TINY_F8"])
def test_taming_models_convert_exactly(tmp_path, name, lightning):
  taming_testing = _taming()
  config = getattr(taming_testing, name)
  taming_model = taming_testing.TamingVQModel(**config, disc_layers=2 if lightning else None)
  suffix = ".ckpt" if lightning else ".pth"
  path = taming_testing.save(taming_model, tmp_path / f"model{suffix}", lightning=lightning)
  conversion, checkpoint, differences = _check_equal(taming_model, path, config, 32)
  print(f"{name} {suffix}: max abs differences {differences}")
  assert checkpoint.global_step == (1234 if lightning else None)
  expected_unused = [k for k in taming_model.state_dict() if k.startswith("loss.")]
  assert conversion.unused_keys == sorted(expected_unused)


def test_the_full_f16_imagenet_model_converts_exactly(tmp_path):
  """taming's vqgan_imagenet_f16_1024 architecture at 256x256, one image; about 25 s on 2
  CPU cores, most of it compiling vqjax's model."""
  taming_testing = _taming()
  started = time.perf_counter()
  taming_model = taming_testing.TamingVQModel(**taming_testing.FULL_F16)
  path = taming_testing.save(taming_model, tmp_path / "last.ckpt", lightning=True)
  _, _, differences = _check_equal(taming_model, path, taming_testing.FULL_F16, 256, batch=1)
  print(f"full f16: max abs differences {differences}, "
        f"{time.perf_counter() - started:.1f} s")


def test_the_reverse_direction_loads_into_taming_strictly():
  taming_testing = _taming()
  import torch  # pylint: disable=import-outside-toplevel
  architecture = tc.taming_architecture(taming_testing.TINY_F8)
  model, _ = _model_and_shapes(architecture)
  params = model.init(jax.random.key(3), jnp.zeros((1, 32, 32, 3)), train=False)["params"]
  taming_model = taming_testing.TamingVQModel(**taming_testing.TINY_F8)
  state_dict = {k: torch.from_numpy(v) for k, v in tc.to_taming_state_dict(params).items()}
  taming_model.load_state_dict(state_dict, strict=True)
  images = taming_testing.images(32)
  expected = taming_model.outputs(images)
  got = _vqjax_outputs(model, {"params": params}, images)
  np.testing.assert_array_equal(got["indices"], expected["indices"])
  np.testing.assert_allclose(got["decoded"], expected["decoded"], atol=TOLERANCE, rtol=0)


class _RunsCommand:
  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return os.system, (f"touch {self.marker}",)


def test_an_unknown_pickled_global_is_never_run(tmp_path):
  taming_testing = _taming()
  taming_model = taming_testing.TamingVQModel(**taming_testing.TINY_F8)
  marker = tmp_path / "ran"
  path = taming_testing.save(taming_model, tmp_path / "evil.ckpt", lightning=True,
                             extra={"callbacks": _RunsCommand(marker)})
  checkpoint = tc.read_checkpoint(path)
  assert not marker.exists()
  assert any(name.endswith(".system") for name in checkpoint.stubbed_globals)
  assert set(checkpoint.state_dict) == set(taming_model.state_dict())


def test_a_file_that_is_no_checkpoint_says_so(tmp_path):
  path = tmp_path / "model.pth"
  path.write_bytes(pickle.dumps({"a": 1}))
  with pytest.raises(ValueError, match="not a torch zip file"):
    tc.read_checkpoint(str(path))


def test_the_discriminator_converts_exactly(tmp_path):
  taming_testing = _taming()
  import torch  # pylint: disable=import-outside-toplevel
  from vqjax.models import PatchGANDiscriminator  # pylint: disable=import-outside-toplevel
  taming_model = taming_testing.TamingVQModel(**taming_testing.TINY_F8, disc_layers=3)
  with torch.no_grad():  # running statistics other than the initial 0 and 1
    for module in taming_model.loss.discriminator.modules():
      if isinstance(module, torch.nn.BatchNorm2d):
        module.running_mean.uniform_(-0.5, 0.5)
        module.running_var.uniform_(0.5, 2.0)
  path = taming_testing.save(taming_model, tmp_path / "last.ckpt", lightning=True)
  state_dict = tc.read_checkpoint(path).state_dict
  discriminator = PatchGANDiscriminator(channels=8, num_layers=3, norm="batch")
  x = jnp.zeros((1, 32, 32, 3))
  shapes = jax.eval_shape(lambda x: discriminator.init(jax.random.key(0), x, train=False), x)
  conversion = tc.discriminator_variables(state_dict, 3, shapes)
  assert conversion.unused_keys == [f"loss.discriminator.main.{i}.num_batches_tracked"
                                    for i in (3, 6, 9)]
  images = taming_testing.images(32, batch=2)
  with torch.no_grad():
    expected = taming_model.loss.discriminator(
        torch.from_numpy(images.transpose(0, 3, 1, 2)))[:, 0].numpy()
  got = discriminator.apply(conversion.variables, images, train=False)
  np.testing.assert_allclose(np.asarray(got), expected, atol=TOLERANCE, rtol=0)
