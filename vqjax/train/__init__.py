"""The training library: what a notebook or another trainer calls to fit vqjax models.

    state.py        TrainState (step, params, opt_state, quantizer_state, rng)
    gan_state.py    GANTrainState: the tokenizer's state plus the discriminator's
    optimizer.py    Adam/AdamW, warmup + cosine or constant, global-norm clipping
    steps.py        tokenizer train_step, eval_step, kmeans_step, per device on axis_name
    gan_steps.py    the adversarial step: generator, adaptive weight, discriminator
    prior_steps.py  prior_train_step, prior_eval_step, per device on axis_name
    maskgit_steps.py  a MaskGIT prior's masked_train_step and masked_eval_step
    parallel.py     every jax.pmap: the steps, inits, encoders and samplers mapped on AXIS_NAME
    checkpoints.py  orbax checkpoints: interval, retention, fallback past damaged steps

The runner (vqjax.runner) ties these to configs, tasks, the loop and reports.
"""
from vqjax.train.checkpoints import Checkpoints
from vqjax.train.optimizer import make_optimizer
from vqjax.train.state import TrainState, create_train_state
