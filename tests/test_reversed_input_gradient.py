"""vqjax.models.reversed_input_gradient: the same convolution and gradients as
jax.lax.conv_general_dilated, with the spatial flips on the activations, not the kernel."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from convolution_testing import NHWC, array, lax_conv, sum_of_sines
from vqjax.models import (batch_split, convolution, eigen_kernel_gradient,
                          reversed_input_gradient)


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
  """These tests are about the single convolution's path; test_batch_split splits it, and
  test_eigen_kernel_gradient takes the kernel gradient to Eigen."""
  monkeypatch.setattr(batch_split, "host_threads", lambda: 1)
  monkeypatch.setattr(eigen_kernel_gradient, "preferred_here", lambda: False)


@pytest.mark.parametrize("input_shape,kernel,padding", [
    ((2, 4, 4, 8), (3, 3), ((1, 1), (1, 1))),     # a 3x3 SAME layer on a small grid
    ((2, 8, 8, 16), (4, 4), ((1, 1), (1, 1))),    # PatchGAN's stride-1 4x4 layer
    ((1, 5, 3, 16), (3, 2), ((2, 0), (0, 1))),    # asymmetric, non-square
    ((3, 6, 5, 4), (5, 3), ((0, 0), (1, 1))),     # no padding on one side
])
def test_values_and_both_gradients_equal_lax(input_shape, kernel, padding):
  x, w = array(input_shape, 0), array((*kernel, input_shape[-1], 12), 1)
  ours = jax.jit(lambda x, w: reversed_input_gradient.conv(x, w, padding))
  lax = lambda x, w: lax_conv(x, w, padding)
  np.testing.assert_allclose(ours(x, w), lax(x, w), rtol=1e-5, atol=1e-5)
  for ours_grad, lax_grad in zip(jax.grad(sum_of_sines(ours), (0, 1))(x, w),
                                 jax.grad(sum_of_sines(lax), (0, 1))(x, w)):
    np.testing.assert_allclose(ours_grad, lax_grad, rtol=1e-4, atol=1e-4)


def test_the_input_gradient_flips_the_activations_and_never_the_kernel():
  x, w = array((2, 4, 4, 8), 0), array((3, 3, 8, 8), 1)
  padding = ((1, 1), (1, 1))
  def flipped_shapes(conv):
    jaxpr = jax.make_jaxpr(jax.grad(sum_of_sines(conv)))(x, w).jaxpr
    return {tuple(eqn.invars[0].aval.shape) for eqn in jaxpr.eqns
            if eqn.primitive.name == "rev"}
  assert flipped_shapes(lambda x, w: lax_conv(x, w, padding)) == {(3, 3, 8, 8)}
  assert flipped_shapes(
      lambda x, w: reversed_input_gradient.conv(x, w, padding)) == {(2, 4, 4, 8)}


def test_bfloat16_gradients_keep_their_dtypes():
  x, w = array((2, 4, 4, 8), 0, jnp.bfloat16), array((3, 3, 8, 8), 1, jnp.bfloat16)
  grads = jax.grad(sum_of_sines(
      lambda x, w: reversed_input_gradient.conv(x, w, ((1, 1), (1, 1)))), (0, 1))(x, w)
  expected = jax.grad(sum_of_sines(lambda x, w: lax_conv(x, w, ((1, 1), (1, 1)))),
                      (0, 1))(x, w)
  for ours, lax in zip(grads, expected):
    assert ours.dtype == jnp.bfloat16
    np.testing.assert_allclose(ours.astype(np.float32), lax.astype(np.float32),
                               rtol=0.05, atol=0.05)


@pytest.mark.parametrize("input_shape,kernel_shape,cheaper", [
    ((4, 4, 4, 512), (3, 3, 512, 512), True),     # LPIPS's VGG16 last block at 64x64
    ((4, 8, 8, 256), (3, 3, 256, 256), True),     # the VQGAN's 8x8 level
    ((4, 16, 16, 256), (3, 3, 256, 256), False),  # near parity: left to XLA
    ((4, 64, 64, 64), (3, 3, 64, 64), False),
    ((1, 2, 2, 512), (1, 1, 512, 512), False),    # a 1x1 kernel has nothing to flip
])
def test_the_flip_goes_where_the_kernel_outweighs_the_activations(input_shape, kernel_shape,
                                                                  cheaper):
  padding = ((kernel_shape[0] // 2,) * 2, (kernel_shape[1] // 2,) * 2)
  assert reversed_input_gradient.reversal_is_cheaper(input_shape, kernel_shape,
                                                     padding) is cheaper


def test_the_drop_in_takes_this_path_only_where_it_is_cheaper():
  def uses_custom_vjp(input_shape, kernel_shape, **kwargs):
    x, w = array(input_shape, 0), array(kernel_shape, 1)
    conv = lambda x, w: convolution.conv_general_dilated(x, w, (1, 1), "SAME",
                                                         dimension_numbers=NHWC, **kwargs)
    return "custom_vjp_call" in str(jax.make_jaxpr(conv)(x, w))
  assert uses_custom_vjp((2, 4, 4, 16), (3, 3, 16, 16))
  assert not uses_custom_vjp((2, 32, 32, 16), (3, 3, 16, 16))
  assert not uses_custom_vjp((2, 4, 4, 16), (3, 3, 16, 16),
                             preferred_element_type=jnp.float32)
