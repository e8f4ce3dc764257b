"""vqjax/models/maskgit_prior.py: a bidirectional prior with a mask token and a class
token, built by build_prior like the other priors; a VQ-VAE-2 bottom MaskGIT reads its top
grid; a tiny MaskGIT learns a trivially predictable grid and samples it; its sampler is
deterministic per key and under pmap equals the per-device sampler."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vqjax import maskgit, sampling
from vqjax.models import MaskGITPrior, TinyMaskGITPrior
from vqjax.runner import build
from vqjax.train import parallel
from vqjax.train.state import create_train_state

Prior = TinyMaskGITPrior
KEY = jax.random.PRNGKey(0)


def _init(model, batch=2, **conditioning):
  tokens = jnp.zeros((batch, *model.grid_shape), jnp.int32)
  return jax.jit(lambda rng: model.init(rng, tokens, train=False, **conditioning))(KEY)


def test_every_position_sees_every_other_and_the_class_token():
  model = Prior(num_classes=3)
  labels = jnp.array([0, 1], jnp.int32)
  variables = _init(model, labels=labels)
  tokens = jnp.full((2, 4, 4), model.mask_token_id, jnp.int32)
  logits = model.apply(variables, tokens, labels=labels, train=False)
  chex.assert_shape(logits, (2, 16, 16))
  assert logits.dtype == jnp.float32
  later = tokens.at[:, 3, 3].set(5)  # the last position changes the first one's logits
  assert np.abs(model.apply(variables, later, labels=labels, train=False)[:, 0]
                - logits[:, 0]).max() > 0
  other = model.apply(variables, tokens, labels=labels[::-1], train=False)
  assert np.abs(other[0] - logits[0]).max() > 0
  assert variables["params"]["token_embed"]["embedding"].shape[0] == 17  # + the mask token
  assert variables["params"]["class_embed"]["embedding"].shape[0] == 3  # no null class


def test_build_prior_selects_maskgit_by_name_with_the_shared_fields():
  prior = build.build_prior(dict(name="maskgit", num_layers=1, embed_dim=16, num_heads=2,
                                 num_classes=10, label_dropout_rate=0.1,
                                 mask_schedule="square"),
                            codebook_size=32, grid_shape=(7, 7), condition_codebook_size=0)
  assert isinstance(prior, MaskGITPrior) and maskgit.is_masked_prior(prior)
  assert prior.mask_token_id == 32 and prior.mask_schedule == "square"
  with pytest.raises(ValueError, match="unknown mask_schedule 'cubic'"):
    _init(Prior(mask_schedule="cubic"))
  with pytest.raises(ValueError, match="labels were not given"):
    _init(Prior(num_classes=3))


def test_a_bottom_maskgit_reads_the_top_grid():
  model = Prior(condition_codebook_size=5)
  top = jax.random.randint(KEY, (2, 2, 2), 0, 5, dtype=jnp.int32)
  variables = _init(model, condition=top)
  sampler = sampling.make_sampler(model, batch_size=2, greedy=True)
  samples = sampler(variables, KEY, condition=top)
  chex.assert_shape(samples, (2, 4, 4))
  scaled = jax.tree.map(lambda x: 4 * x, variables)
  assert (sampler(scaled, KEY, condition=top)
          != sampler(scaled, KEY, condition=(top + 1) % 5)).any()


def test_a_tiny_maskgit_learns_a_predictable_grid_and_samples_it():
  """Every grid is its class's constant: token = 3 * label + 1."""
  model = Prior(num_classes=4, num_layers=1)
  optimizer = optax.adam(1e-2)
  labels = np.tile(np.arange(4, dtype=np.int32), 8).reshape(4, 8)  # [devices, per device]
  grids = np.broadcast_to((3 * labels + 1)[..., None, None], (4, 8, 4, 4)).astype(np.int32)
  batch = {"tokens": grids, "label": labels}
  state = create_train_state(model, optimizer, grids[0, :1], seed=0, labels=labels[0, :1])
  step = parallel.prior_train_step(model, optimizer)
  for _ in range(60):
    state, metrics = step(state, batch)
    jax.block_until_ready(metrics)  # one step in flight at a time: see conftest.py
  assert float(metrics["loss"]) < 0.05 and float(metrics["masked_accuracy"]) == 1.0
  sampler = sampling.make_sampler(model, batch_size=4, maskgit_steps=4)
  samples = sampler({"params": state.params}, KEY, jnp.arange(4, dtype=jnp.int32))
  np.testing.assert_array_equal(samples, np.broadcast_to((3 * np.arange(4) + 1)[:, None, None],
                                                         (4, 4, 4)))


def test_sampling_is_deterministic_per_key_and_pmapped_equals_per_device():
  model = Prior(num_classes=3, num_layers=1)
  labels = jnp.arange(4, dtype=jnp.int32) % 3
  variables = jax.tree.map(lambda x: 4 * x, _init(model, 4, labels=labels))
  sampler = sampling.make_sampler(model, batch_size=4, top_k=8, maskgit_steps=6,
                                  choice_temperature=2.0)
  first = sampler(variables, KEY, labels)
  chex.assert_shape(first, (4, 4, 4))
  assert np.all((np.asarray(first) >= 0) & (np.asarray(first) < 16))
  np.testing.assert_array_equal(first, sampler(variables, KEY, labels))
  assert (first != sampler(variables, jax.random.PRNGKey(1), labels)).any()
  pmapped = parallel.prior_sample_step(model, per_device_batch=4, top_k=8, maskgit_steps=6,
                                       choice_temperature=2.0)
  samples = pmapped(variables, KEY, jnp.broadcast_to(labels, (4, 4)))
  chex.assert_shape(samples, (4, 4, 4, 4))
  for device in range(4):
    np.testing.assert_array_equal(samples[device],
                                  sampler(variables, jax.random.fold_in(KEY, device), labels))


def test_options_of_the_other_kind_of_prior_are_errors():
  with pytest.raises(ValueError, match="num_steps \\(positions\\) is an option of causal"):
    sampling.make_sampler(Prior(), batch_size=2, num_steps=3)(_init(Prior()), KEY)
  from vqjax.models import TinyTransformerPrior  # pylint: disable=import-outside-toplevel
  with pytest.raises(ValueError, match="maskgit_steps are options of MaskGIT priors"):
    sampling.make_sampler(TinyTransformerPrior(), batch_size=2, maskgit_steps=8)
  with pytest.raises(ValueError, match="label_smoothing is 0.1 but the prior is causal"):
    parallel.prior_train_step(TinyTransformerPrior(), optax.sgd(0.1), label_smoothing=0.1)


def test_the_vqvae2_bottom_config_has_a_maskgit_switch():
  from experiments.configs import prior_vqvae2_bottom  # pylint: disable=import-outside-toplevel
  config = prior_vqvae2_bottom.get_config("maskgit,tiny")
  assert config.level == "bottom" and config.model.name == "maskgit"
  prior = build.build_prior(config.model, codebook_size=32, grid_shape=(8, 8),
                            condition_codebook_size=32)
  grids, top = (jax.ShapeDtypeStruct(shape, jnp.int32) for shape in ((2, 8, 8), (2, 4, 4)))
  labels = jax.ShapeDtypeStruct((2,), jnp.int32)
  logits = jax.eval_shape(lambda g, t, l: prior.apply(
      prior.init(KEY, g, condition=t, labels=l, train=False), g, condition=t, labels=l,
      train=False), grids, top, labels)
  assert logits.shape == (2, 64, 32)
