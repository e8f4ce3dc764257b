#!/usr/bin/env bash
# Trains on a Cloud TPU VM slice with several hosts: creates the slice, copies this
# checkout to every worker, installs it with JAX for TPU, and starts the same training
# command on all workers at once. On a TPU VM each process finds the others by itself
# (config.distributed.initialize='auto' calls jax.distributed.initialize), reads its own
# share of the data, and saves checkpoints into the one gs:// WORKDIR they share; run
# `train` again with the same WORKDIR to resume.
#
#   PROJECT=my-project ZONE=europe-west4-b TPU_NAME=vqjax ACCELERATOR=v5litepod-16 \
#   RUNTIME_VERSION=v2-alpha-tpuv5-lite WORKDIR=gs://my-bucket/vqjax/cifar10 \
#   bash experiments/tpu_pod.sh all        # or: create | setup | train | delete
#
# RUNTIME_VERSION goes with the TPU generation (cloud.google.com/tpu/docs/runtimes):
# v6e v2-alpha-tpuv6e, v5p v2-alpha-tpuv5, v5e v2-alpha-tpuv5-lite, v4 and older
# tpu-ubuntu2204-base. CONFIG (default experiments/configs/cifar10.py) picks the config;
# the global batch size must divide by the slice's chip count. Each worker downloads the
# dataset into its own ~/tensorflow_datasets.
set -euo pipefail

: "${PROJECT:?set PROJECT to your Google Cloud project id}"
: "${ZONE:?set ZONE to a zone with the TPUs you want, e.g. europe-west4-b}"
: "${TPU_NAME:?set TPU_NAME to a name for the TPU slice}"
: "${ACCELERATOR:?set ACCELERATOR to an accelerator type, e.g. v5litepod-16}"
: "${RUNTIME_VERSION:?set RUNTIME_VERSION to the software version, e.g. v2-alpha-tpuv5-lite}"
: "${WORKDIR:?set WORKDIR to a gs://bucket/path that every worker can write}"
CONFIG="${CONFIG:-experiments/configs/cifar10.py}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TPU=(--project="${PROJECT}" --zone="${ZONE}")

on_all_workers() {
  gcloud compute tpus tpu-vm ssh "${TPU_NAME}" "${TPU[@]}" --worker=all --command="$1"
}

create() {
  gcloud compute tpus tpu-vm create "${TPU_NAME}" "${TPU[@]}" \
    --accelerator-type="${ACCELERATOR}" --version="${RUNTIME_VERSION}"
}

setup() {
  local archive
  archive="$(mktemp -d)/vqjax.tar.gz"
  tar -czf "${archive}" -C "${REPO}" --exclude=.git --exclude=__pycache__ \
    --exclude=.pytest_cache --exclude=workdir .
  gcloud compute tpus tpu-vm scp "${archive}" "${TPU_NAME}:vqjax.tar.gz" "${TPU[@]}" \
    --worker=all
  on_all_workers 'rm -rf ~/vqjax && mkdir ~/vqjax && tar -xzf ~/vqjax.tar.gz -C ~/vqjax &&
    cd ~/vqjax && python3 -m pip install -e . "jax[tpu]"'  # jax within setup.cfg's pin
}

train() {
  on_all_workers "cd ~/vqjax && python3 -m experiments.train --config=${CONFIG} \
    --workdir=${WORKDIR}"
}

delete() {
  gcloud compute tpus tpu-vm delete "${TPU_NAME}" "${TPU[@]}" --quiet
}

case "${1:-all}" in
  create) create ;;
  setup) setup ;;
  train) train ;;
  delete) delete ;;
  all) create && setup && train ;;
  *) echo "usage: $0 [create|setup|train|delete|all]" >&2; exit 2 ;;
esac
