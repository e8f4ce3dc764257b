"""Training: the train state, per-device steps, the one place that pmaps, checkpoints,
reports, and the loop that ties them to a config.

    state.py        TrainState (step, params, opt_state, quantizer_state, rng)
    optimizer.py    Adam/AdamW, warmup + cosine or constant, global-norm clipping
    build.py        build_model(config.model): VQ-VAE or VQ-VAE-2 with a quantizer layer;
                    build_prior: transformer or gated PixelCNN prior
    steps.py        train_step, eval_step, kmeans_step, per device on axis_name
    prior_steps.py  prior_train_step, prior_eval_step, per device on axis_name
    parallel.py     their jax.pmap, state in and out unreplicated and donated
    experiment.py   prepare(config): every check before compiling; the data iterators
    checkpoints.py  orbax checkpoints: interval, retention, fallback past damaged steps
    preemption.py   SIGTERM -> save and exit cleanly
    summaries.py    TensorBoard files, progress line, the NaN guard
    images.py       reconstruction grids and codebook usage plots
    evaluation.py   MSE, PSNR, normalized MSE and codebook usage over a split
    distributed.py  the jax.distributed.initialize hook
    loop.py         train_and_evaluate(config, workdir), evaluate_workdir(workdir)
    prior_loop.py   train_prior(config, workdir): a prior over a tokenizer's token grids
"""
from vqjax.train.build import build_model
from vqjax.train.checkpoints import Checkpoints
from vqjax.train.loop import evaluate_workdir, train_and_evaluate
from vqjax.train.optimizer import make_optimizer
from vqjax.train.state import TrainState, create_train_state
from vqjax.train.summaries import NonFiniteLossError
