"""The main job runs the whole pipeline end to end (on tiny configs) and writes its outputs."""
import json

from PIL import Image

from experiments import quickstart


def test_quickstart_writes_metrics_and_pictures(tmp_path):
  metrics = quickstart.run(str(tmp_path), "tiny")
  for name in quickstart.OUTPUTS:
    assert (tmp_path / name).exists(), name
  assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
  tokenizer, prior = metrics["tokenizer"], metrics["prior"]
  assert {"mse", "psnr", "normalized_mse", "perplexity", "codes_used_fraction"} <= set(tokenizer)
  assert 0.0 < tokenizer["normalized_mse"] < 2.0  # 20 tiny steps: only a sanity bound
  assert prior["nll_nats_per_token"] > 0 and prior["bits_per_dim"] > 0
  for name in ("reconstructions.png", "samples.png"):
    with Image.open(tmp_path / name) as image:
      assert image.size[0] > 0 and image.size[1] > 0
  lines = quickstart.summary(metrics, str(tmp_path)).splitlines()
  assert f"  python -m experiments.evaluate --workdir={tmp_path / 'tokenizer'}" in lines
  assert f"  python -m experiments.sample --workdir={tmp_path / 'prior'} --label=3" in lines
  assert f"  {tmp_path / 'samples.png'}" in lines
