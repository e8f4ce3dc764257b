"""The train state of a VQGAN: the tokenizer's TrainState plus the discriminator's.

    (TrainState's fields)  step, params, opt_state, quantizer_state, rng: the generator
                           (encoder, quantizer, decoder), as vqjax.train.state documents
    disc_params            the discriminator's 'params'
    disc_opt_state         its own optimizer's state
    disc_state             its other collections: {'batch_stats': ...} with batch norm, else {}
    ema_params             an exponential moving average of params ({} when disabled):
                           what `variables`, and so evaluation and tokenization, use
    lecam_ema              vqjax.losses.LeCamEMA of the logits ({} when LeCam is off)
"""
from __future__ import annotations

from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from vqjax import losses
from vqjax.train.state import QUANTIZER_STATE, TrainState, create_train_state


@flax.struct.dataclass
class GANTrainState(TrainState):
  disc_params: Any = None
  disc_opt_state: Any = None
  disc_state: Any = None
  ema_params: Any = None
  lecam_ema: Any = None

  @property
  def variables(self) -> dict:
    """The generator's variables for model.apply: the EMA parameters when kept."""
    return {"params": self.ema_params or self.params, **self.quantizer_state_collection}


def create_gan_train_state(model: nn.Module, discriminator: nn.Module,
                           generator_optimizer: optax.GradientTransformation,
                           discriminator_optimizer: optax.GradientTransformation, images, *,
                           seed: int, generator_ema: bool = False,
                           lecam: bool = False) -> GANTrainState:
  """A fresh state: both networks initialized on images [B, H, W, C], both optimizers at 0.

  A per-device function like create_train_state (vqjax.train.parallel maps it).
  """
  generator = create_train_state(model, generator_optimizer, images, seed=seed)
  disc_key = jax.random.key(seed + 1, impl="rbg")  # not the generator's initializer key
  disc_variables = discriminator.init({"params": disc_key}, images, train=False)
  disc_params = disc_variables["params"]
  disc_state = {name: value for name, value in disc_variables.items() if name != "params"}
  unknown = set(disc_state) - {"batch_stats"}
  if unknown or QUANTIZER_STATE in disc_state:
    raise ValueError(f"the discriminator declares variable collections {sorted(unknown)} "
                     "besides 'params' and 'batch_stats'; the GAN step updates only those")
  return GANTrainState(
      **{field: getattr(generator, field)
         for field in ("step", "params", "opt_state", "quantizer_state", "rng")},
      disc_params=disc_params, disc_opt_state=discriminator_optimizer.init(disc_params),
      disc_state=disc_state,
      ema_params=jax.tree.map(jnp.copy, generator.params) if generator_ema else {},
      lecam_ema=losses.init_lecam_ema()._asdict() if lecam else {})
