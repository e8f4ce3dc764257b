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
