"""experiments/tpu_pod.sh parses, names every setting it misses, and sends the gcloud
commands of the Cloud TPU guide: create the slice, then install and train on every
worker (run against a stand-in gcloud that records its arguments)."""
import os
import subprocess

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "experiments", "tpu_pod.sh")
SETTINGS = dict(PROJECT="my-project", ZONE="europe-west4-b", TPU_NAME="vqjax-pod",
                ACCELERATOR="v5litepod-16", RUNTIME_VERSION="v2-alpha-tpuv5-lite",
                WORKDIR="gs://my-bucket/vqjax/cifar10")


def _run(tmp_path, *args, **settings):
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir(exist_ok=True)
  gcloud = bin_dir / "gcloud"
  gcloud.write_text('#!/usr/bin/env bash\nprintf "%s\\0" "$*" >> "$GCLOUD_CALLS"\n')
  gcloud.chmod(0o755)
  calls = tmp_path / "calls.txt"
  env = {name: value for name, value in os.environ.items() if name not in SETTINGS}
  env.update(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", GCLOUD_CALLS=str(calls),
             TMPDIR=str(tmp_path), **settings)
  result = subprocess.run(["bash", SCRIPT, *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
  return result, calls.read_text().split("\0")[:-1] if calls.exists() else []


def test_the_script_parses():
  subprocess.run(["bash", "-n", SCRIPT], check=True, timeout=30)


def test_all_creates_installs_and_trains_on_every_worker(tmp_path):
  result, calls = _run(tmp_path, "all", **SETTINGS)
  assert result.returncode == 0, result.stderr
  create, scp, setup, train = calls
  where = "--project=my-project --zone=europe-west4-b"
  assert create == (f"compute tpus tpu-vm create vqjax-pod {where} "
                    "--accelerator-type=v5litepod-16 --version=v2-alpha-tpuv5-lite")
  assert scp.startswith("compute tpus tpu-vm scp ") and scp.endswith(
      f"vqjax-pod:vqjax.tar.gz {where} --worker=all")
  for call in (setup, train):
    assert call.startswith(f"compute tpus tpu-vm ssh vqjax-pod {where} --worker=all --command=")
  assert 'python3 -m pip install -e . "jax[tpu]"' in setup
  assert ("python3 -m experiments.train --config=experiments/configs/cifar10.py"
          in " ".join(train.split()))
  assert "--workdir=gs://my-bucket/vqjax/cifar10" in train


def test_a_missing_setting_is_named(tmp_path):
  settings = dict(SETTINGS)
  del settings["WORKDIR"]
  result, calls = _run(tmp_path, "all", **settings)
  assert result.returncode != 0 and "set WORKDIR to a gs://" in result.stderr
  assert calls == []
