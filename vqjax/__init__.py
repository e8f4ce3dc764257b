"""vqjax: vector-quantized autoencoders and token-grid priors in JAX.

The public API, layer by layer (each imports only those above it):

    vqjax.quantizers   pure quantizer functions (vq, ema, fsq, lfq, gumbel, residual)
    vqjax.nn           Flax layers over them, one output type and interface
    vqjax.models       VQ-VAE, VQ-VAE-2, VQGAN, PatchGAN, LPIPS, the priors
    vqjax.losses       the reconstruction and adversarial losses
    vqjax.metrics      feature statistics, FID, KID and the Inception Score
    vqjax.sampling     compiled samplers over token sequences, classifier-free guidance
    vqjax.guidance     classifier-free guidance as pure functions
    vqjax.maskgit      MaskGIT's mask schedules, masking and parallel decoding
    vqjax.data         TFDS input pipelines and the built-in digits (imports TensorFlow)
    vqjax.tokens       token grids of a dataset, cached and batched (imports TensorFlow)
    vqjax.train        train states, per-device steps, the one pmap, checkpoints
    vqjax.runner       tasks, the one training loop, evaluators, reports

The modules that read data through TensorFlow (data, tokens, runner) are imported when
first used, so `import vqjax` stays light.
"""
import importlib

from vqjax import (guidance, losses, maskgit, metrics, models, nn, quantizers, sampling,
                   train)
from vqjax.losses import reconstruction_loss
from vqjax.models import (VQGAN, VQVAE, VQVAE2, GatedPixelCNN, LPIPS, PatchGANDiscriminator,
                          MaskGITPrior, TransformerPrior)
from vqjax.nn import FSQ, LFQ, GumbelQuantizer, VectorQuantizer
from vqjax.sampling import make_sampler
from vqjax.train import Checkpoints, TrainState, create_train_state, make_optimizer

__version__ = "0.1.0"
_LAZY = ("data", "tokens", "runner")


def __getattr__(name):
  if name in _LAZY:
    return importlib.import_module(f"vqjax.{name}")
  raise AttributeError(f"module 'vqjax' has no attribute {name!r}")
