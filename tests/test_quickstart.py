"""The main job runs end to end (on the tiny digits config) and writes its outputs."""
import json

from PIL import Image

from experiments import quickstart


def test_quickstart_writes_metrics_and_pictures(tmp_path):
  metrics = quickstart.run(str(tmp_path), "tiny")
  for name in quickstart.OUTPUTS:
    assert (tmp_path / name).exists(), name
  assert json.loads((tmp_path / "metrics.json").read_text())["mse"] == metrics["mse"]
  assert {"mse", "psnr", "normalized_mse", "perplexity", "codes_used_fraction"} <= set(metrics)
  assert 0.0 < metrics["normalized_mse"] < 2.0  # 20 tiny steps: only a sanity bound
  with Image.open(tmp_path / "reconstructions.png") as image:
    assert image.size[0] > 0 and image.size[1] > 0
