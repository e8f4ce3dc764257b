"""experiments.prior_table trains each prior once, evaluates each row's sampling settings
with a generation FID, and resumes row by row."""
import json
import os
import types

from absl import app
import pytest

import train_testing
from experiments import prior_table
from experiments.configs import prior_digits
from vqjax.runner import tokenizer_task
from vqjax.runner.fid_evaluator import InceptionEvaluator


@pytest.fixture(scope="module")
def tokenizer_workdir(tmp_path_factory):
  data_dir = train_testing.prepare_digits(str(tmp_path_factory.mktemp("tfds")))
  workdir = str(tmp_path_factory.mktemp("tokenizer"))
  tokenizer_task.train_tokenizer(train_testing.tiny_config(data_dir, num_steps=1), workdir)
  return workdir


def _tiny(prior, tokenizer_workdir):
  assert prior == "transformer"
  config = prior_digits.get_config("tiny")
  config.update(tokenizer_workdir=tokenizer_workdir)
  config.data.eval_split = "test[:8]"
  config.train.update(num_steps=1, num_samples=4)
  return config


def test_rows_share_their_prior_and_resume(tokenizer_workdir, tmp_path, capsys):
  try:
    inception = InceptionEvaluator(per_device_batch=1, progress=False)
  except ValueError as error:
    pytest.skip(f"FID Inception weights not installed ({error})")
  trained = []

  def make_config(prior):
    trained.append(prior)
    return _tiny(prior, tokenizer_workdir)

  rows = ["transformer", "transformer_s2"]
  with pytest.warns(UserWarning):  # 4 samples for 2048 features
    results = prior_table.run_rows(str(tmp_path), rows, make_config, fid_samples=4,
                                   cache_dir=str(tmp_path / "cache"), inception=inception)
  assert trained == ["transformer"]  # one prior serves both rows
  assert [r["row"] for r in results] == rows
  assert all(r["fid"] > 0 and r["fid_samples"] == 4 and r["nll_kind"] == "exact"
             for r in results)
  assert all(r["bits_per_dim"] > 0 for r in results)
  saved = json.loads((tmp_path / "rows" / "transformer_s2.json").read_text())
  assert saved == results[1] and saved["settings"] == {"guidance_scale": 2.0}
  # Each row's evaluation has its own directory with its samples.
  assert results[0]["samples_png"] != results[1]["samples_png"]
  assert all(os.path.exists(r["samples_png"]) for r in results)
  table = (tmp_path / "table.md").read_text()
  assert "transformer, guidance s = 2.0" in table and "transformer, no guidance" in table
  assert table in capsys.readouterr().out

  trained.clear()  # again: every row is read back
  assert prior_table.run_rows(str(tmp_path), rows, make_config, fid_samples=4,
                              inception=inception) == results
  assert trained == []


def test_the_table_lists_every_finished_row_whichever_command_ran_it(tmp_path, capsys):
  def finished(row, fid):
    prior, settings = prior_table.ROWS[row]
    return {"row": row, "prior": prior, "settings": settings, "fid": fid, "fid_samples": 8}

  (tmp_path / "rows").mkdir()
  for row, fid in (("pixelcnn", 30.0), ("transformer", 10.0), ("maskgit_t8", 20.0)):
    (tmp_path / "rows" / f"{row}.json").write_text(json.dumps(finished(row, fid)))

  def make_config(prior):
    raise AssertionError(f"{prior} has finished: nothing is trained")

  results = prior_table.run_rows(str(tmp_path), ["maskgit_t8"], make_config, fid_samples=8)
  assert [r["row"] for r in results] == ["maskgit_t8"]
  lines = (tmp_path / "table.md").read_text().splitlines()[2:]
  assert [line.split(" | ")[:2] for line in lines] == [  # in the order of ROWS
      ["| transformer, no guidance", "10.00"], ["| maskgit, T = 8, no guidance", "20.00"],
      ["| pixelcnn, no guidance", "30.00"]]
  assert "pixelcnn, no guidance" in capsys.readouterr().out


def test_a_maskgit_row_reads_its_masked_nll():
  evaluation = types.SimpleNamespace(step=3, directory="/w/maskgit/evaluations/step_3",
                                     metrics={"fid": 12.5, "fid_samples": 100.0,
                                              "masked_nll_0.5": 1.25, "masked_nll_0.9": 2.0,
                                              "sampling_images_per_second": 31.25})
  result = prior_table.row_results("maskgit_t4_s2", evaluation)
  assert (result["nll"], result["nll_kind"], result["prior"]) == (1.25, "masked at ratio 0.5",
                                                                  "maskgit")
  assert prior_table.table_markdown([result]).splitlines()[-1] == (
      "| maskgit, T = 4, guidance s = 2.0 | 12.50 | - | 1.250 (masked, r = 0.5) | - | 100 | 31.2 |")


def test_a_causal_row_reports_its_nll_in_nats_per_token_and_bits_per_dim():
  evaluation = types.SimpleNamespace(step=3, directory="/w/transformer/evaluations/step_3",
                                     metrics={"fid": 40.0, "fid_samples": 2000.0,
                                              "inception_score": 5.5,
                                              "nll_nats_per_token": 4.6,
                                              "bits_per_dim": 0.138,
                                              "sampling_images_per_second": 90.0})
  result = prior_table.row_results("transformer_s2", evaluation)
  assert (result["nll"], result["bits_per_dim"], result["nll_kind"]) == (4.6, 0.138, "exact")
  assert prior_table.table_markdown([result]).splitlines()[-1] == (
      "| transformer, guidance s = 2.0 | 40.00 | 5.50 | 4.600 | 0.1380 | 2000 | 90.0 |")


def test_unknown_rows_are_usage_errors():
  with pytest.raises(app.UsageError, match="unknown rows \\['nope'\\]; choose from transformer,"):
    prior_table.check_rows(["transformer", "nope"])


def test_the_cifar10_cpu_priors_are_the_cifar10_ones_shrunk_for_two_cores():
  for prior, size in (("transformer", "embed_dim"), ("maskgit", "embed_dim"),
                      ("pixelcnn", "hidden_channels")):
    full = prior_table.prior_config("cifar10", prior, "/tokenizer")
    cpu = prior_table.prior_config("cifar10_cpu", prior, "/tokenizer")
    assert cpu.model[size] < full.model[size] and cpu.model.name == full.model.name
    assert cpu.train.num_steps == 10_000 < full.train.num_steps
    assert cpu.data.batch_size == 64 and cpu.optimizer.learning_rate == 1e-3


@pytest.mark.parametrize("dataset", sorted(prior_table.PRIOR_CONFIGS))
def test_every_prior_config_builds(dataset):
  for prior in ("transformer", "maskgit", "pixelcnn"):
    config = prior_table.prior_config(dataset, prior, "/tokenizer")
    assert config.model.name == prior and config.model.num_classes == 10
    assert config.model.label_dropout_rate > 0  # guidance needs the null class
