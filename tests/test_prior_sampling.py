"""vqjax/runner/prior_sampling.py's make_prior_sampler: one entry point for both priors
(the transformer's cache and the PixelCNN's recomputation behind vqjax.sampling), params
in, the same grids as vqjax.sampling.make_sampler; a wrong grid shape names the fix; a
VQ-VAE-2 top prior gets only the sampling options that fit it."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vqjax import sampling
from vqjax.models import TinyGatedPixelCNN, TinyTransformerPrior
from vqjax.runner.prior_sampling import make_prior_sampler


@pytest.mark.parametrize("model", [TinyTransformerPrior(num_layers=1, num_classes=3),
                                   TinyGatedPixelCNN(num_classes=3)],
                         ids=["transformer", "pixelcnn"])
def test_make_prior_sampler_is_make_sampler_for_both_priors(model):
  labels = jnp.array([0, 1], jnp.int32)
  variables = model.init(jax.random.PRNGKey(0), jnp.zeros((2, 4, 4), jnp.int32),
                         labels=labels, train=False)
  sampler = make_prior_sampler(model, grid_shape=(4, 4), batch_size=2, top_k=4)
  grids = sampler(variables["params"], jax.random.PRNGKey(1), labels)
  assert grids.shape == (2, 4, 4) and grids.dtype == jnp.int32
  np.testing.assert_array_equal(
      grids, sampling.make_sampler(model, batch_size=2, top_k=4)(variables,
                                                                 jax.random.PRNGKey(1), labels))
  with pytest.raises(ValueError, match="pass the grid shape the prior was built for"):
    make_prior_sampler(model, grid_shape=(4, 2), batch_size=2)


def test_a_top_prior_gets_only_the_sampling_options_that_fit_it():
  from vqjax.models import TinyMaskGITPrior  # pylint: disable=import-outside-toplevel
  from vqjax.runner.prior_sampling import args_for  # pylint: disable=import-outside-toplevel
  options = dict(temperature=0.9, guidance_scale=2.0, guidance_ramp=True, maskgit_steps=12,
                 choice_temperature=3.0)
  assert args_for(TinyTransformerPrior(num_classes=3), options) == dict(
      temperature=0.9, guidance_scale=2.0, guidance_ramp=True)
  assert args_for(TinyTransformerPrior(), options) == dict(temperature=0.9)
  assert args_for(TinyMaskGITPrior(num_classes=3), {**options, "num_steps": 4}) == options
