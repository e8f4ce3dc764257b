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
from vqjax.runner.build import build_model
from vqjax.runner.loop import train_and_evaluate
from vqjax.runner.prior_task import train_prior
from vqjax.runner.summaries import NonFiniteLossError
from vqjax.runner.task import Evaluator, Task
from vqjax.runner.tokenizer_task import evaluate_latest, evaluate_workdir, train_tokenizer
