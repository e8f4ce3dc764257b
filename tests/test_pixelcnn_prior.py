"""Gated PixelCNN prior: raster-order causality with no blind spot, class conditioning,
the fields and refusals it shares with the transformer prior (its sampling is tested in
tests/test_sampling.py, on the one sampler path)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vqjax.models.pixelcnn_prior import GatedPixelCNN

K, H, W = 7, 4, 4
# 3 layers of kernel 3 are the fewest that reach every earlier position of a 4x4 grid
# (num_layers * (kernel_size // 2) >= W - 1: the upper-right corner is just in reach).
# 16 channels make a position whose output ReLUs are all off at init (no gradient) unlikely.
TINY = dict(codebook_size=K, grid_shape=(H, W), hidden_channels=16, num_layers=3, kernel_size=3)


def _tokens(seed=0, batch=2):
  return jax.random.randint(jax.random.PRNGKey(seed), (batch, H, W), 0, K, jnp.int32)


@pytest.fixture(scope="module")
def prior():
  model = GatedPixelCNN(**TINY)
  return model, model.init(jax.random.PRNGKey(1), _tokens(), train=False)


def test_logits_shape_and_dtype(prior):
  model, variables = prior
  logits = model.apply(variables, _tokens(), train=True)
  assert logits.shape == (2, H * W, K) and logits.dtype == jnp.float32


def test_every_earlier_position_and_nothing_later_reaches_each_logit(prior):
  model, variables = prior
  embedded = model.apply(variables, _tokens(batch=1), method=lambda m, t: m.embedding(t))

  def logit_sums(x):
    return model.apply(variables, x, method=GatedPixelCNN.embedded_logits)[0].sum(-1)

  jacobian = jax.jacrev(logit_sums)(embedded)  # [H*W, 1, H, W, C]
  reach = np.asarray(jnp.abs(jacobian).sum(-1)).reshape(H * W, H * W)  # [t, j]
  for t in range(H * W):
    earlier = np.arange(H * W) < t
    assert np.all(reach[t, ~earlier] == 0), f"logit {t} sees positions >= {t}"
    assert np.all(reach[t, earlier] > 0), (
        f"logit {t} misses earlier positions {np.flatnonzero(earlier & (reach[t] == 0))}")


def test_changing_a_token_leaves_earlier_logits_unchanged(prior):
  model, variables = prior
  tokens = _tokens()
  logits = model.apply(variables, tokens, train=False)
  for t in (0, 3, 5, H * W - 1):
    i, j = divmod(t, W)
    changed = tokens.at[:, i, j].set((tokens[:, i, j] + 1) % K)
    new_logits = model.apply(variables, changed, train=False)
    np.testing.assert_array_equal(new_logits[:, :t + 1], logits[:, :t + 1])
    if t + 1 < H * W:
      assert not np.allclose(new_logits[:, t + 1], logits[:, t + 1])


def test_conditional_prior_uses_its_label():
  model = GatedPixelCNN(**TINY, num_classes=3)
  tokens = _tokens()
  variables = model.init(jax.random.PRNGKey(0), tokens, labels=jnp.zeros(2, jnp.int32),
                         train=False)
  first = model.apply(variables, tokens, labels=jnp.array([0, 0]), train=False)
  second = model.apply(variables, tokens, labels=jnp.array([0, 2]), train=False)
  np.testing.assert_array_equal(first[0], second[0])
  assert not np.allclose(first[1], second[1])
  with pytest.raises(ValueError, match="pass labels"):
    model.apply(variables, tokens, train=False)
  with pytest.raises(ValueError, match="unconditional"):
    GatedPixelCNN(**TINY).init(jax.random.PRNGKey(0), tokens, labels=jnp.zeros(2, jnp.int32),
                               train=False)


def test_bad_fields_and_inputs_raise():
  tokens = _tokens()
  with pytest.raises(ValueError, match="odd int"):
    GatedPixelCNN(codebook_size=K, grid_shape=(H, W), kernel_size=4).init(jax.random.PRNGKey(0), tokens, train=False)
  with pytest.raises(ValueError, match=r"token grid \[B, H, W\]"):
    GatedPixelCNN(**TINY).init(jax.random.PRNGKey(0), tokens.astype(jnp.float32), train=False)


def test_takes_no_top_grid_condition_and_checks_the_grid_shape(prior):
  model, variables = prior
  tokens = _tokens()
  with pytest.raises(ValueError, match="takes no top-grid condition"):
    GatedPixelCNN(**TINY, condition_codebook_size=5).init(jax.random.PRNGKey(0), tokens,
                                                           train=False)
  with pytest.raises(ValueError, match="pass condition=None"):
    model.apply(variables, tokens, condition=tokens[:, :2, :2], train=False)
  with pytest.raises(ValueError, match=r"build it with grid_shape=\(4, 2\)"):
    model.apply(variables, tokens[:, :, :2], train=False)
  with pytest.raises(ValueError, match="or 0 for an unconditional"):
    GatedPixelCNN(**TINY, num_classes=None).init(jax.random.PRNGKey(0), tokens, train=False)
