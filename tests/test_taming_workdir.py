"""Tests for vqjax.runner.taming_workdir: a taming checkpoint becomes an ordinary tokenizer
workdir that restores to taming's outputs, evaluates, feeds token grids and fine-tunes.

Builds taming's own modules (needs torch and taming-transformers: pip install -e .[bench]).
"""
import json

import jax
import numpy as np
import pytest

pytest.importorskip("torch", reason="builds taming's model: pip install -e .[bench]")
pytest.importorskip("taming", reason="needs taming-transformers: pip install -e .[bench]")

import taming_testing  # noqa: E402
import train_testing  # noqa: E402
from experiments.configs import from_workdir, vqgan_digits  # noqa: E402
from vqjax.runner import build, taming_workdir, token_cache, tokenizer_task  # noqa: E402
from vqjax.train import gan_state  # noqa: E402

# taming's VQModel on the built-in 8x8 one-channel digits, with a one-layer discriminator.
DIGITS = dict(ddconfig=taming_testing.ddconfig(ch=32, ch_mult=(1, 2), num_res_blocks=1,
                                                attn_resolutions=(4,), z_channels=8,
                                                resolution=8, channels=1),
              n_embed=16, embed_dim=8)
LOSS = {"target": "taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator",
        "params": dict(disc_conditional=False, disc_in_channels=1, disc_start=1000,
                       disc_weight=0.6, codebook_weight=1.0, disc_num_layers=1, disc_ndf=8)}
YAML = {"model": {"base_learning_rate": 4.5e-6, "target": "taming.models.vqgan.VQModel",
                  "params": {**DIGITS, "lossconfig": LOSS}}}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return train_testing.prepare_digits(str(tmp_path_factory.mktemp("tfds")))


def base_config(data_dir):
  config = vqgan_digits.get_config("tiny")
  config.data.update(data_dir=data_dir, eval_split="test[:64]")
  config.gan.perceptual_weight = 0.0  # LPIPS in the step is tested in test_gan_steps.py
  return config


@pytest.fixture(scope="module")
def converted(data_dir, tmp_path_factory):
  """(taming model, workdir, conversion) of a Lightning .ckpt at global_step 1234."""
  tmp = tmp_path_factory.mktemp("taming")
  model = taming_testing.TamingVQModel(**DIGITS, disc_layers=1, disc_ndf=8)
  path = taming_testing.save(model, tmp / "last.ckpt", lightning=True)
  workdir = str(tmp / "workdir")
  return model, workdir, taming_workdir.convert_to_workdir(path, YAML, workdir,
                                                           base_config(data_dir))


def test_the_workdir_is_a_training_runs_at_step_0(converted):
  _, workdir, conversion = converted
  config = json.loads(open(f"{workdir}/config.json").read())
  assert config == json.loads(conversion.config.to_json())
  assert config["model"]["channels"] == 32 and config["data"]["image_size"] == 8
  # taming's legacy loss: beta on the codebook term, the commitment term at 1
  assert config["model"]["quantizer"]["beta"] == 1.0
  assert config["train"]["quantizer_loss_weights"] == {"codebook_loss": 0.25,
                                                       "commitment_loss": 1.0}
  assert config["discriminator"] == dict(name="patchgan", channels=8, num_layers=1,
                                         norm="batch", dtype="float32")
  assert config["gan"]["discriminator_weight"] == 0.6
  assert config["gan"]["discriminator_start"] == 0  # disc_start 1000 < global_step 1234
  record = json.loads(open(f"{workdir}/{taming_workdir.CONVERSION_FILE}").read())
  assert record["unused_keys"] == conversion.unused_keys == [
      "loss.discriminator.main.3.num_batches_tracked"]
  assert record["global_step"] == 1234
  assert any("optimizer states start fresh" in note for note in conversion.notes)


def test_the_restored_workdir_is_tamings_model(converted, data_dir):
  taming, workdir, _ = converted
  run, state = tokenizer_task.restore_workdir(workdir)
  assert isinstance(state, gan_state.GANTrainState) and int(state.step) == 0
  images = taming_testing.images(8, channels=1, batch=4)
  expected = taming.outputs(images)
  model = build.build_model(run.config.model, axis_name=None)  # outside pmap
  indices = model.apply(state.variables, images, method=model.encode)
  np.testing.assert_array_equal(np.asarray(indices), expected["indices"])
  decoded = model.apply(state.variables, indices, method=model.decode_indices)
  np.testing.assert_allclose(np.asarray(decoded), expected["decoded"], atol=1e-4, rtol=0)
  import torch  # pylint: disable=import-outside-toplevel
  with torch.no_grad():
    logits = taming.loss.discriminator(torch.from_numpy(images.transpose(0, 3, 1, 2)))
  got = run.gan.discriminator.apply({"params": state.disc_params, **state.disc_state},
                                    images, train=False)
  np.testing.assert_allclose(np.asarray(got), logits[:, 0].numpy(), atol=1e-4, rtol=0)
  grids = token_cache.restore_with_grids(workdir, ["test[:16]"]).grids["test[:16]"]
  assert grids.grids["tokens"].shape == (16, 4, 4)  # what experiments.train_prior reads


def test_evaluate_reads_it_and_train_fine_tunes_it(converted):
  _, workdir, _ = converted
  evaluation = tokenizer_task.evaluate_latest(workdir, lpips=False)
  assert evaluation.step == 0 and evaluation.directory.endswith("evaluations/step_0")
  assert np.isfinite(evaluation.metrics["mse"])
  _, before = tokenizer_task.restore_workdir(workdir)
  config = from_workdir.get_config(workdir)  # as experiments.train reads it
  config.train.update(num_steps=2, allow_config_change=True)
  metrics = tokenizer_task.train_tokenizer(config, workdir)
  assert metrics["step"] == 2
  _, after = tokenizer_task.restore_workdir(workdir)
  assert int(after.step) == 2
  moved = jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))),
                       before.disc_params, after.disc_params)
  # the discriminator trained from step 1 on (the hinge loss may leave the logits' bias)
  assert all(leaves["kernel"] for leaves in moved.values() if "kernel" in leaves)


def test_a_plain_state_dict_gets_a_fresh_discriminator_and_says_so(data_dir, tmp_path):
  model = taming_testing.TamingVQModel(**DIGITS)
  path = taming_testing.save(model, tmp_path / "model.pth", lightning=False)
  conversion = taming_workdir.convert_to_workdir(path, DIGITS, str(tmp_path / "w"),
                                                 base_config(data_dir))
  assert conversion.unused_keys == []
  assert conversion.config.discriminator.norm == "group"  # the base config's
  assert conversion.config.gan.discriminator_start == 10  # the base config's


def test_a_workdir_in_use_is_refused(converted, data_dir, tmp_path):
  _, workdir, _ = converted
  with pytest.raises(ValueError, match="is not empty; pass a new directory"):
    taming_workdir.convert_to_workdir("unused.ckpt", YAML, workdir, base_config(data_dir))
