"""experiments.convert_taming: taming's YAML and checkpoint in, a tokenizer workdir out;
bad YAML named. The conversion itself: test_taming_checkpoint.py, test_taming_workdir.py."""
import json

import pytest
import yaml

from experiments import convert_taming


def test_reads_tamings_yaml(tmp_path):
  path = tmp_path / "model.yaml"
  path.write_text("model:\n  target: taming.models.vqgan.VQModel\n  params:\n    n_embed: 1024\n"
                  "    embed_dim: 256\n    ddconfig:\n      ch_mult: [1, 1, 2, 2, 4]\n")
  tree = convert_taming.read_taming_config(str(path))
  assert tree["model"]["params"]["ddconfig"]["ch_mult"] == [1, 1, 2, 2, 4]


@pytest.mark.parametrize("text, message", [("model: [unclosed", "is not YAML"),
                                           ("- a list", "holds a list")])
def test_bad_yaml_is_named(tmp_path, text, message):
  path = tmp_path / "model.yaml"
  path.write_text(text)
  with pytest.raises(ValueError, match=message):
    convert_taming.read_taming_config(str(path))
  with pytest.raises(ValueError, match="cannot be read"):
    convert_taming.read_taming_config(str(tmp_path / "missing.yaml"))


def test_converts_a_checkpoint_into_a_workdir(tmp_path, capsys):
  pytest.importorskip("torch", reason="builds taming's model: pip install -e .[bench]")
  pytest.importorskip("taming", reason="needs taming-transformers: pip install -e .[bench]")
  import taming_testing  # pylint: disable=import-outside-toplevel
  from experiments.configs import vqgan_imagenet256_f16  # pylint: disable=import-outside-toplevel
  model = taming_testing.TamingVQModel(**taming_testing.TINY_F16, disc_layers=2)
  checkpoint = taming_testing.save(model, tmp_path / "last.ckpt", lightning=True)
  config = tmp_path / "model.yaml"
  config.write_text(yaml.safe_dump({"model": {"target": "taming.models.vqgan.VQModel",
                                              "params": taming_testing.TINY_F16}}))
  workdir = tmp_path / "workdir"
  conversion = convert_taming.run(str(checkpoint), str(config), str(workdir),
                                  vqgan_imagenet256_f16.get_config())
  err = capsys.readouterr().err
  assert f"wrote {workdir}" in err and "optimizer states start fresh" in err
  saved = json.loads((workdir / "config.json").read_text())
  assert saved["data"]["dataset"] == "imagenet2012" and saved["data"]["image_size"] == 32
  assert saved["model"]["channel_multipliers"] == [1, 1, 2, 2, 4]
  assert (workdir / "checkpoints" / "0").is_dir()
  assert conversion.unused_keys == ["loss.discriminator.main.3.num_batches_tracked",
                                    "loss.discriminator.main.6.num_batches_tracked"]
