"""The experiment runner: configs to tasks, the one training loop, evaluators and reports.

    build.py           config.model (and discriminator, prior) -> modules
    experiment.py      the tokenizer task: every check before compiling; its data
    gan_experiment.py  the adversarial parts of a tokenizer task
    loop.py            train_and_evaluate(config, workdir), evaluate_workdir(workdir)
    prior_loop.py      train_prior(config, workdir)
    prior_sampling.py  images sampled from a prior and decoded by its tokenizer
    evaluation.py      MSE, PSNR, normalized MSE and codebook usage over a split
    summaries.py       TensorBoard, progress line, the NaN guard
    images.py          reconstruction grids and codebook usage plots
    preemption.py      SIGTERM -> save and exit cleanly
    distributed.py     the jax.distributed.initialize hook
"""
from vqjax.runner.build import build_model
from vqjax.runner.loop import evaluate_workdir, train_and_evaluate
from vqjax.runner.summaries import NonFiniteLossError
