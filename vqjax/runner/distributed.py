"""The hook that joins a multi-process run: jax.distributed.initialize when configured.

config.distributed:
  initialize           'auto' (initialize on a Cloud TPU VM, or when coordinator_address
                       is set), 'always' (let JAX detect the cluster: TPU, SLURM, MPI,
                       Kubernetes) or 'never'
  coordinator_address  'host:port' of process 0; None to let JAX detect it
  num_processes, process_id   None to let JAX detect them

Call it first, before anything touches a JAX device.
"""
from __future__ import annotations

import glob
import importlib.util

from absl import logging
import jax

MODES = ("auto", "always", "never")


def maybe_initialize(*, initialize: str = "auto", coordinator_address: str | None = None,
                     num_processes: int | None = None, process_id: int | None = None) -> bool:
  """Initializes jax.distributed as the module docstring says; True if it did."""
  if initialize not in MODES:
    raise ValueError(f"config.distributed.initialize is {initialize!r}; choose one of "
                     f"{', '.join(map(repr, MODES))}")
  wanted = initialize == "always" or (
      initialize == "auto" and (coordinator_address is not None or on_cloud_tpu_vm()))
  if not wanted or jax.distributed.is_initialized():
    return False
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes, process_id=process_id)
  logging.info("jax.distributed initialized: process %d of %d", jax.process_index(),
               jax.process_count())
  return True


def on_cloud_tpu_vm() -> bool:
  """libtpu is installed and TPU chips are attached (without starting any JAX backend)."""
  return (importlib.util.find_spec("libtpu") is not None
          and bool(glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*")))
