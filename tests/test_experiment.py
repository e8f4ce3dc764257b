"""Every mistake in a config fails in experiment.prepare, on shapes and metadata alone:
nothing compiles first."""
import contextlib
import logging

import jax
import pytest

import train_testing
from experiments.configs import prior_digits
from vqjax.runner import experiment, workdir as workdir_lib


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return train_testing.prepare_digits(str(tmp_path_factory.mktemp("tfds")))


@contextlib.contextmanager
def _nothing_compiles(caplog):
  with caplog.at_level(logging.WARNING), jax.log_compiles():
    yield
  compiled = [r.getMessage() for r in caplog.records if "XLA compilation" in r.getMessage()]
  assert not compiled, compiled


def test_a_good_config_prepares_without_compiling(data_dir, caplog):
  with _nothing_compiles(caplog):
    run = experiment.prepare(train_testing.tiny_config(data_dir))
  assert run.info.image_shape == (8, 8, 1)
  assert run.abstract_state.quantizer_state["quantizer"]["codebook"].shape == (32, 8)
  assert run.config.data.data_dir == data_dir


CASES = {
    "image size": (lambda c: c.data.update(image_size=10) or c.model.update(downsample_factor=4),
                   "image size 10 is not divisible by the encoder's downsampling factor 4; "
                   "use 8 or 12"),
    "channels": (lambda c: c.model.update(image_channels=3),
                 "dataset 'vqjax_digits' has 1-channel images but config.model.image_channels "
                 "is 3; set config.model.image_channels=1"),
    "batch size": (lambda c: c.data.update(batch_size=30),
                   "batch size 30 is not divisible by the 4 devices; use 28 or 32"),
    "eval batch size": (lambda c: c.data.update(eval_batch_size=6),
                        "batch size 6 is not divisible by the 4 devices; use 4 or 8"),
    "dataset": (lambda c: c.data.update(dataset="digitz"), "unknown dataset 'digitz'"),
    "split": (lambda c: c.data.update(eval_split="valid"),
              r"unknown split 'valid' for dataset 'vqjax_digits'; available splits: 'train', "
              "'test'"),
    "codebook size": (lambda c: c.model.quantizer.update(codebook_size=0),
                      "codebook size is 0; it must be at least 1"),
    "beta": (lambda c: c.model.quantizer.update(beta=-0.5),
             "beta is -0.5; the commitment weight must be >= 0"),
    "learning rate": (lambda c: c.optimizer.update(learning_rate=0.0),
                      "learning rate is 0.0; it must be > 0"),
    "optimizer field": (lambda c: c.optimizer.update(momentum=0.9),
                        r"config.optimizer has unknown field\(s\) 'momentum'; its fields are"),
    "steps": (lambda c: c.train.update(num_steps=0),
              "config.train.num_steps is 0; it must be an int >= 1"),
    "eval interval": (lambda c: c.train.update(eval_every_steps=-1),
                      "config.train.eval_every_steps is -1"),
    "model": (lambda c: c.model.update(name="vqvae3"), "unknown model 'vqvae3'"),
    "no batch": (lambda c: c.data.update(batch_size=0),
                 "config.data.batch_size: batch size must be a positive int; got 0"),
    "grid examples": (lambda c: c.train.update(grid_examples=0),
                      r"config.train.grid_examples is 0; it must be an int >= 1"),
    "k-means iterations": (lambda c: c.train.update(kmeans_iterations=-1),
                           r"config.train.kmeans_iterations is -1; it must be an int >= 1"),
    "kept checkpoints": (lambda c: c.train.update(keep_checkpoints=0),
                         r"config.train.keep_checkpoints is 0; it must be an int >= 1, or None"),
    "variance examples": (lambda c: c.data.update(variance_examples=0),
                          r"config.data.variance_examples is 0; it must be an int >= 1"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_config_errors_come_before_compiling(data_dir, caplog, case):
  change, message = CASES[case]
  config = train_testing.tiny_config(data_dir)
  config.unlock()
  change(config)
  with _nothing_compiles(caplog), pytest.raises(ValueError, match=message):
    experiment.prepare(config)


def test_saved_config_round_trips(data_dir, tmp_path):
  config = experiment.resolve_paths(train_testing.tiny_config(data_dir))
  workdir_lib.save_config(config, str(tmp_path))
  loaded = workdir_lib.load_config(str(tmp_path))
  assert loaded.to_json(sort_keys=True) == config.to_json(sort_keys=True)
  with pytest.raises(ValueError, match="elsewhere does not exist; pass the --workdir"):
    workdir_lib.load_config(str(tmp_path / "elsewhere"))


PRIOR_CASES = {
    "num_samples": (dict(num_samples=0), r"config.train.num_samples is 0; it must be an int >= 1"),
    "top_k": (dict(top_k=0), r"config.train.top_k is 0; use top_k >= 1"),
    "temperature": (dict(temperature=-1.0), r"config.train.temperature is -1.0; use a "
                                            r"temperature >= 0"),
    "top_p": (dict(top_p=1.5), r"config.train.top_p is 1.5; use 0 < top_p <= 1"),
}


@pytest.mark.parametrize("case", sorted(PRIOR_CASES))
def test_a_priors_sampling_settings_are_checked_first(case):
  train, message = PRIOR_CASES[case]
  config = prior_digits.get_config("tiny")
  config.train.update(train)
  with pytest.raises(ValueError, match=message):
    experiment.check_train_config(config.train)
