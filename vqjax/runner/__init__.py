"""The experiment runner: configs to tasks, the one training loop, evaluators and reports.

    task.py            Task (what the loop needs of an experiment) and the Evaluator protocol
    loop.py            train_and_evaluate(task, workdir): the one training loop
    reports.py         writes what evaluators yield: metrics.json, PNGs, TensorBoard
    workdir.py         a workdir's config.json and checkpoints
    build.py           config.model (discriminator, prior) -> modules
    experiment.py      a tokenizer config checked before compiling; its data
    gan_experiment.py  the adversarial sections of a config (any tokenizer)
    tokenizer_task.py  the tokenizer task, train_tokenizer, evaluate_latest (evaluate_workdir)
    token_cache.py     a tokenizer's token grids, cached in its workdir
    prior_task.py      the prior task, train_prior, sampling a trained prior
    prior_sampling.py  images sampled from a prior and decoded by its tokenizer
    masked_nll.py      a MaskGIT prior's masked-token NLL and accuracy at fixed mask ratios
    evaluation.py      MSE, PSNR, normalized MSE and codebook usage over a split
    summaries.py       TensorBoard writer, progress line, the NaN guard
    images.py          reconstruction grids and codebook usage plots
    preemption.py      SIGTERM -> save and exit cleanly
    distributed.py     the jax.distributed.initialize hook
"""
import importlib

# Each name is imported on first use, so that `from vqjax.runner import build` (a benchmark,
# a notebook building a model) loads that module alone, not TensorFlow's input pipeline and
# TensorBoard writer that training needs.
_EXPORTS = {
    "build_model": "build", "train_and_evaluate": "loop", "train_prior": "prior_task",
    "NonFiniteLossError": "summaries", "Evaluator": "task", "Task": "task",
    "evaluate_latest": "tokenizer_task", "evaluate_workdir": "tokenizer_task",
    "train_tokenizer": "tokenizer_task",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
  if name in _EXPORTS:
    value = getattr(importlib.import_module(f"vqjax.runner.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
  raise AttributeError(f"module 'vqjax.runner' has no attribute {name!r}")


def __dir__():
  return sorted(set(globals()) | set(_EXPORTS))
