"""MaskedNLLEvaluator: a MaskGIT prior's test metrics, in place of the causal priors' NLL
(a masked-token prior has no exact likelihood).

At each mask ratio r of config.train.eval_mask_ratios (default 0.5 and 0.9), ceil(r * N)
random tokens of every test grid are masked (the same positions at every evaluation:
the keys are fixed) and the prior predicts them from the rest:

    masked_nll_<r>        mean NLL in nats of the masked tokens
    masked_accuracy_<r>   fraction of them that the argmax predicts
    num_examples          test grids
"""
from __future__ import annotations

import jax
import numpy as np

from vqjax import tokens
from vqjax.train import maskgit_steps, parallel

_EVAL_KEY = 0


class MaskedNLLEvaluator:
  """Masked-token NLL and accuracy at fixed mask ratios over run.eval_grids (run: a
  PriorExperiment, or anything with its config, model and eval_grids), compiled once."""

  def __init__(self, run):
    self._run = run
    self._ratios = tuple(run.config.train.get("eval_mask_ratios", None)
                         or maskgit_steps.EVAL_MASK_RATIOS)
    for ratio in self._ratios:
      if not 0 < ratio <= 1:
        raise ValueError(f"config.train.eval_mask_ratios holds {ratio}; use ratios in "
                         "(0, 1], e.g. (0.5, 0.9)")
    self._eval_fn = parallel.masked_eval_step(run.model, mask_ratios=self._ratios)

  def run(self, state):
    sums = None
    batches = tokens.make_token_iterator(
        self._run.eval_grids, batch_size=self._run.config.data.eval_batch_size, train=False)
    for index, batch in enumerate(batches):
      rng = jax.random.fold_in(jax.random.PRNGKey(_EVAL_KEY), index)
      batch_sums = jax.device_get(self._eval_fn(state, batch, rng))
      sums = batch_sums if sums is None else jax.tree.map(np.add, sums, batch_sums)
    for ratio in self._ratios:
      name = maskgit_steps.ratio_name(ratio)
      masked = float(sums[f"masked_{name}"])
      yield f"masked_nll_{name}", float(sums[f"nll_{name}"]) / masked
      yield f"masked_accuracy_{name}", float(sums[f"correct_{name}"]) / masked
    yield "num_examples", float(sums["count"])
