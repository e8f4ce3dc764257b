"""experiments.quantizer_table runs its rows one after another, resumably: a finished row is
read back, not redone; a row stopped mid-training resumes; the table lists every row."""
import json

from absl import app
import pytest

import train_testing
from experiments import quantizer_table
from experiments.configs import cifar10_sonnet


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return train_testing.prepare_digits(str(tmp_path_factory.mktemp("tfds")))


def _digits_config(data_dir, row, num_steps=2):
  """A table row's quantizer on the tiny digits tokenizer (4x4 grids of 8x8 images)."""
  config = train_testing.tiny_config(data_dir, num_steps=num_steps, checkpoint_every_steps=1)
  spec = cifar10_sonnet.QUANTIZER_ROWS[row]
  config.model.embedding_dim = spec["embedding_dim"]
  config.model.quantizer = dict(spec["quantizer"])
  config.train.kmeans_init = spec["kmeans_init"]
  config.data.eval_split = "test[:32]"
  return config


def test_rows_run_once_and_resume(data_dir, tmp_path, capsys):
  rows = ["vq", "fsq", "residual_2x32"]
  made = []

  def make_config(row):
    made.append(row)
    return _digits_config(data_dir, row)

  results = quantizer_table.run_rows(str(tmp_path), rows, make_config,
                                     evaluate_args=dict(lpips=False, fid=False))
  assert [r["row"] for r in results] == rows and made == rows
  fsq = json.loads((tmp_path / "fsq" / "table_row.json").read_text())
  assert fsq == results[1] and fsq["step"] == 2 and fsq["num_codes"] == 1000
  assert fsq["codes_used"][0] == round(fsq["codes_used_fraction"][0] * 1000) >= 1
  assert len(results[2]["perplexity"]) == 2 and results[2]["num_codes"] == 32  # per level
  assert results[0]["train_steps_per_second"] > 0
  table = (tmp_path / "table.md").read_text()
  assert table.count("\n") == 2 + len(rows) and "FSQ, levels (8, 5, 5, 5)" in table
  assert table in capsys.readouterr().out

  # Again: nothing is redone. A row whose table entry is gone but whose training finished
  # is evaluated again from its checkpoint; a longer run resumes where it stopped.
  made.clear()
  (tmp_path / "vq" / "table_row.json").unlink()

  def longer(row):
    made.append(row)
    config = _digits_config(data_dir, row, num_steps=3)
    config.train.allow_config_change = True  # num_steps is a safe change
    return config

  again = quantizer_table.run_rows(str(tmp_path), rows, longer,
                                   evaluate_args=dict(lpips=False, fid=False))
  assert made == ["vq"] and again[0]["step"] == 3 and again[1:] == results[1:]


def test_the_table_lists_every_finished_row_whichever_command_ran_it(tmp_path):
  for row, psnr in (("fsq", 20.0), ("vq", 10.0)):
    (tmp_path / row).mkdir()
    (tmp_path / row / "table_row.json").write_text(json.dumps({"row": row, "psnr": psnr}))

  def make_config(row):
    raise AssertionError(f"{row} has finished: nothing is trained")

  results = quantizer_table.run_rows(str(tmp_path), ["fsq"], make_config,
                                     evaluate_args=dict(lpips=False, fid=False))
  assert [r["row"] for r in results] == ["fsq"]
  lines = (tmp_path / "table.md").read_text().splitlines()[2:]
  assert [line.split(" | ")[2] for line in lines] == ["10.00", "20.00"]  # QUANTIZER_ROWS order
  assert lines[1].startswith("| FSQ, levels (8, 5, 5, 5)")


def test_unknown_rows_are_usage_errors():
  quantizer_table.check_rows(["vq", "fsq"])
  with pytest.raises(app.UsageError, match="unknown rows \\['nope'\\]; choose from vq,"):
    quantizer_table.check_rows(["vq", "nope"])


def _finished(row, rate):
  return {"row": row, "normalized_mse": 0.1, "psnr": 20.0, "lpips": None, "rfid": None,
          "codes_used": [10], "perplexity": [9.5], "train_steps_per_second": rate}


def test_the_steps_column_is_the_interleaved_timing_not_the_logged_rate():
  results = [_finished("vq", 0.5), _finished("fsq", 3.0)]
  untimed = quantizer_table.table_markdown(results)
  assert untimed.splitlines()[2].endswith("| 9.5 | - |")  # not the logged 0.5
  step_times = {"threads": 1, "repetitions": 3, "times": {"vq": [0.5, 0.25, 0.4],
                                                           "fsq": [0.2, 0.1, 0.3]}}
  lines = quantizer_table.table_markdown(results, step_times).splitlines()
  assert lines[2].endswith("| 9.5 | 4.00 |") and lines[3].endswith("| 9.5 | 10.00 |")
  assert "fastest of 3 steps" in lines[-1] and "held to 1 thread" in lines[-1]


def test_step_times_are_measured_once_for_the_same_rows(tmp_path):
  calls = []

  def run_worker(module, threads, arguments):
    calls.append((module, threads, arguments))
    return {"times": {row: [0.5] for row in arguments[0][len("--rows="):].split(",")}}

  first = quantizer_table.time_rows(str(tmp_path), ["vq", "fsq"], repetitions=2,
                                    run_worker=run_worker)
  assert calls == [("experiments.bench_quantizer_table", 1, ["--rows=vq,fsq",
                                                             "--repetitions=2"])]
  assert first == json.loads((tmp_path / "step_times.json").read_text())
  assert quantizer_table.time_rows(str(tmp_path), ["vq", "fsq"], repetitions=2,
                                   run_worker=run_worker) == first and len(calls) == 1
  quantizer_table.time_rows(str(tmp_path), ["vq", "fsq", "lfq"], repetitions=2,
                            run_worker=run_worker)  # another row: all are timed again
  assert len(calls) == 2 and calls[1][2][0] == "--rows=vq,fsq,lfq"
