"""The quick start runs end to end and its tokens reconstruct the held-out digits."""
import json

from PIL import Image

from experiments import quickstart


def test_quickstart_writes_metrics_and_reconstructions(tmp_path):
  results = quickstart.main(["--workdir", str(tmp_path), "--steps", "20", "--batch_size", "256"])
  assert results["test_normalized_mse"] < 0.3
  assert results["test_codes_used_fraction"] > 0.8
  assert json.loads((tmp_path / "metrics.json").read_text()) == results
  with Image.open(tmp_path / "reconstructions.png") as image:
    assert image.size[0] > image.size[1] > 0
