"""One process of a multi-process run of the real training loop, for test_multiprocess.py.

    python tests/multiprocess_worker.py PROCESS_ID NUM_PROCESSES LOCAL_DEVICES PORT \
        DATA_DIR WORKDIR OUTPUT_JSON PREEMPT_AT_STEP

Runs loop.train_and_evaluate on the tiny digits config with NUM_PROCESSES x LOCAL_DEVICES
CPU devices (joined by jax.distributed on localhost:PORT, with gloo collectives), fed
fixed global batches of digits of which this process takes its own rows, so every
layout sees the same global batches. Unless PREEMPT_AT_STEP is 0, a preemption is
simulated after that step: the loop saves a checkpoint and returns, and a second call
resumes from it. Writes this process's per-step losses and the final evaluation to
OUTPUT_JSON.
"""
import json
import sys

import jax

NUM_STEPS = 4


def main(process_id, num_processes, local_devices, port, data_dir, workdir, output,
         preempt_at_step):
  jax.config.update("jax_num_cpu_devices", local_devices)
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  # pylint: disable=import-outside-toplevel  # after the devices are configured
  import numpy as np
  import train_testing
  from vqjax.data import digits
  from vqjax.train import parallel
  from vqjax.runner import experiment, loop, preemption, tokenizer_task

  config = train_testing.tiny_config(data_dir, num_steps=NUM_STEPS, log_every_steps=1,
                                     checkpoint_every_steps=NUM_STEPS)
  if num_processes > 1:
    config.distributed.update(coordinator_address=f"localhost:{port}",
                              num_processes=num_processes, process_id=process_id)
  images = digits.digits_arrays()[0].astype(np.float32) / 127.5 - 1.0

  def train_batches(run, *, start_step):
    """This process's rows of global batch `step`, for step from start_step on."""
    batch_size, devices = run.config.data.batch_size, jax.local_device_count()
    rows = batch_size // jax.process_count()
    for step in range(start_step, NUM_STEPS):
      batch = images[step * batch_size:(step + 1) * batch_size]
      own = batch[jax.process_index() * rows:(jax.process_index() + 1) * rows]
      yield {"image": own.reshape(devices, rows // devices, *own.shape[1:])}

  losses = {}
  real_train_step = parallel.train_step

  def recording_train_step(*args, **kwargs):
    step_fn = real_train_step(*args, **kwargs)

    def recorded(state, batch):
      state, metrics = step_fn(state, batch)
      losses[int(jax.device_get(state.step))] = float(jax.device_get(metrics["loss"]))
      return state, metrics
    return recorded

  class PreemptedOnce(preemption.Preemption):
    def requested(self, step):  # the resumed run starts after preempt_at_step
      return super().requested(step) or step == preempt_at_step

  experiment.train_batches = train_batches
  parallel.train_step = recording_train_step
  loop.Preemption = PreemptedOnce
  metrics = tokenizer_task.train_tokenizer(config, workdir)
  preempted = metrics is None
  if preempted:
    metrics = tokenizer_task.train_tokenizer(config, workdir)
  with open(output, "w") as f:
    json.dump({"process_count": jax.process_count(), "device_count": jax.device_count(),
               "preempted": preempted, "losses": losses, "metrics": metrics}, f)


if __name__ == "__main__":
  main(*map(int, sys.argv[1:5]), *sys.argv[5:8], int(sys.argv[8]))
