"""The public API re-exported at the top, as optax does; the TensorFlow parts lazily."""
import subprocess
import sys

import vqjax


def test_the_public_names_are_at_the_top():
  for name in ("quantizers", "nn", "models", "losses", "sampling", "train", "VQVAE", "VQGAN",
               "VQVAE2", "TransformerPrior", "GatedPixelCNN", "VectorQuantizer", "FSQ", "LFQ",
               "GumbelQuantizer", "make_sampler", "TrainState", "reconstruction_loss"):
    assert hasattr(vqjax, name), name
  assert vqjax.runner.train_tokenizer and vqjax.runner.train_and_evaluate
  assert vqjax.tokens.make_token_iterator and vqjax.data.make_train_iterator


def test_import_vqjax_does_not_import_tensorflow():
  code = "import sys, vqjax; print('tensorflow' in sys.modules)"
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
  assert result.stdout.strip() == "False"


def test_building_models_from_the_runner_does_not_import_tensorflow():
  # What a benchmark or a notebook building a model needs; training's input pipeline and
  # TensorBoard writer (TensorFlow) load only when used.
  code = ("import sys; from vqjax.runner import build, gan_experiment; "
          "print('tensorflow' in sys.modules, 'clu' in sys.modules)")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
  assert result.stdout.strip() == "False False"


def test_the_runner_names_load_on_first_use():
  import vqjax.runner as runner  # pylint: disable=import-outside-toplevel
  from vqjax.runner import summaries, tokenizer_task  # pylint: disable=import-outside-toplevel
  assert runner.train_tokenizer is tokenizer_task.train_tokenizer
  assert runner.NonFiniteLossError is summaries.NonFiniteLossError
  assert set(runner.__all__) <= set(dir(runner))
  try:
    runner.not_a_name  # pylint: disable=pointless-statement
  except AttributeError as error:
    assert "not_a_name" in str(error)
  else:
    raise AssertionError("an unknown name must raise AttributeError")
