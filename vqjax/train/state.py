"""The train state: everything a step reads and writes, and everything a checkpoint holds.

    step             int32, updates done so far; also the number of batches consumed, so
                     resuming reads on from batch `step` (make_train_iterator's start_step)
    params           the model's 'params' collection, moved by the optimizer
    opt_state        the optax state
    quantizer_state  the model's 'quantizer_state' collection ({} when it has none): EMA
                     codebooks, usage and restart offsets, updated inside the model
    rng              uint32 [2] base key, fixed for the run; the step that starts at
                     state.step draws its keys from fold_in(rng, state.step), so a resumed
                     run draws the same keys
"""
from __future__ import annotations

from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from vqjax.nn.quantizer_layers import STATE as QUANTIZER_STATE


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  opt_state: Any
  quantizer_state: Any
  rng: jax.Array

  @property
  def variables(self) -> dict:
    """The model's variables, for model.apply."""
    return {"params": self.params, **self.quantizer_state_collection}

  @property
  def quantizer_state_collection(self) -> dict:
    return {QUANTIZER_STATE: self.quantizer_state} if self.quantizer_state else {}


def create_train_state(model: nn.Module, optimizer: optax.GradientTransformation, images, *,
                       seed: int, **model_inputs) -> TrainState:
  """A fresh state: the model initialized on images [B, H, W, C] (a prior: on token grids
  [B, h, w], with its labels= in model_inputs), the optimizer at 0.

  A per-device function like the steps (the quantizers sum usage over their axis_name):
  vqjax.train.parallel.init_state maps it, and jax.eval_shape of that gives the abstract
  state that checkpoints restore into, running the model's checks on the shapes without
  compiling anything.
  """
  # rbg keys (XLA's RngBitGenerator) compile the initializers in a fraction of threefry's time.
  init_key = jax.random.key(seed, impl="rbg")
  rng = jax.random.PRNGKey(seed)
  variables = model.init({"params": init_key}, images, train=False, **model_inputs)
  unknown = set(variables) - {"params", QUANTIZER_STATE}
  if unknown:
    raise ValueError(
        f"the model declares variable collections {sorted(unknown)} besides 'params' and "
        f"{QUANTIZER_STATE!r}; the train step only updates those two")
  params = variables["params"]
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    opt_state=optimizer.init(params),
                    quantizer_state=variables.get(QUANTIZER_STATE, {}), rng=rng)


def step_key(state: TrainState):
  """The key of the step that state.step counts: the same on every replica and on resume."""
  return jax.random.fold_in(state.rng, state.step)


def kmeans_key(state: TrainState):
  """The key of the k-means initialization, apart from every step's key."""
  return jax.random.fold_in(state.rng, _KMEANS_KEY_DATA)


_KMEANS_KEY_DATA = 2 ** 32 - 1  # never a step number
