"""vqjax.models.eigen_kernel_gradient: the same convolution and gradients as
jax.lax.conv_general_dilated, the kernel gradient compiled as a convolution that XLA:CPU
leaves to Eigen (its kernel taller than its input, the operands in place)."""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from convolution_testing import NHWC, array, lax_conv, sum_of_sines
from vqjax.models import batch_split, convolution, eigen_kernel_gradient


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
  """These tests are about the single convolution's path; test_batch_split splits it."""
  monkeypatch.setattr(batch_split, "host_threads", lambda: 1)


CASES = [
    ((2, 8, 8, 16), (3, 3), ((1, 1), (1, 1))),    # a 3x3 SAME layer
    ((2, 8, 8, 16), (4, 4), ((1, 1), (1, 1))),    # PatchGAN's stride-1 4x4 layer
    ((1, 7, 5, 8), (3, 2), ((2, 0), (0, 1))),     # asymmetric, non-square
    ((3, 9, 9, 4), (3, 3), ((0, 1), (0, 1))),     # an unpadded 3x3 given its cropped row
]


@pytest.mark.parametrize("reverse_input_gradient", [False, True])
@pytest.mark.parametrize("input_shape,kernel,padding", CASES)
def test_values_and_both_gradients_equal_lax(input_shape, kernel, padding,
                                             reverse_input_gradient):
  x, w = array(input_shape, 0), array((*kernel, input_shape[-1], 12), 1)
  assert eigen_kernel_gradient.routable(x.shape, w.shape, padding, x.dtype)
  ours = jax.jit(lambda x, w: eigen_kernel_gradient.conv(x, w, padding, None,
                                                         reverse_input_gradient))
  lax = lambda x, w: lax_conv(x, w, padding)
  np.testing.assert_allclose(ours(x, w), lax(x, w), rtol=1e-5, atol=1e-5)
  for ours_grad, lax_grad in zip(jax.grad(sum_of_sines(ours), (0, 1))(x, w),
                                 jax.grad(sum_of_sines(lax), (0, 1))(x, w)):
    np.testing.assert_allclose(ours_grad, lax_grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("parts", [2, 3])
def test_parts_of_the_batch_give_the_same_values_and_gradients(parts):
  x, w = array((5, 8, 8, 16), 0), array((3, 3, 16, 8), 1)
  padding = ((1, 1), (1, 1))
  ours = jax.jit(lambda x, w: eigen_kernel_gradient.conv(x, w, padding, None, False, parts))
  lax = lambda x, w: lax_conv(x, w, padding)
  np.testing.assert_allclose(ours(x, w), lax(x, w), rtol=1e-5, atol=1e-5)
  for ours_grad, lax_grad in zip(jax.grad(sum_of_sines(ours), (0, 1))(x, w),
                                 jax.grad(sum_of_sines(lax), (0, 1))(x, w)):
    np.testing.assert_allclose(ours_grad, lax_grad, rtol=1e-4, atol=1e-4)
  # per part a convolution and its input gradient, one kernel gradient for the whole batch
  jaxpr = str(jax.make_jaxpr(jax.grad(sum_of_sines(ours), 1))(x, w))
  assert jaxpr.count("conv_general_dilated[") == 2 * parts + 1


def _entry_convolution_windows(compiled_text):
  """Window sizes of the convolutions XLA left outside its fusions (Eigen's, on the CPU)."""
  entry = compiled_text[compiled_text.index("ENTRY"):]
  return re.findall(r" convolution\(.*?window=\{size=(\d+x\d+)", entry)


def test_the_kernel_gradient_is_compiled_as_a_taller_unswapped_kernel():
  if jax.default_backend() != "cpu":
    pytest.skip("this is about XLA:CPU's compiled program")
  x, w = array((2, 8, 8, 32), 0), array((3, 3, 32, 32), 1)
  padding = ((1, 1), (1, 1))
  kernel_gradient = jax.jit(jax.grad(lambda w: jnp.sum(
      eigen_kernel_gradient.conv(x, w, padding) ** 2)))
  text = kernel_gradient.lower(w).compile().as_text()
  # dy [2, 8, 8, 32] with one zero row is the kernel, 9x8: taller than x (8 rows), fewer
  # positions than x with its column padding (8 x 10), so it is not swapped with x.
  assert _entry_convolution_windows(text) == ["9x8"]


@pytest.mark.parametrize("input_shape,kernel_shape,padding,dtype,routable", [
    ((4, 64, 64, 64), (3, 3, 64, 64), ((1, 1), (1, 1)), jnp.float32, True),
    ((4, 8, 8, 256), (4, 4, 256, 512), ((1, 1), (1, 1)), jnp.float32, True),
    ((4, 8, 8, 256), (3, 3, 256, 256), ((1, 1), (1, 1)), jnp.bfloat16, False),
    ((4, 8, 8, 64), (1, 1, 64, 64), ((0, 0), (0, 0)), jnp.float32, False),   # 1x1: a dot
    ((4, 8, 8, 64), (1, 7, 64, 64), ((0, 0), (3, 3)), jnp.float32, False),   # one row
    ((1, 2, 64, 8), (3, 3, 8, 8), ((1, 1), (1, 1)), jnp.float32, False),     # would swap
])
def test_routable_where_xla_keeps_the_operands_in_place(input_shape, kernel_shape, padding,
                                                        dtype, routable):
  assert eigen_kernel_gradient.routable(input_shape, kernel_shape, padding,
                                        dtype) is routable


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
  cpuinfo = tmp_path / "cpuinfo"
  cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n\nprocessor\t: 1\n")
  flags = eigen_kernel_gradient.cpu_flags(str(cpuinfo))
  assert {"avx2", "fma"} <= flags and "avx512f" not in flags
  assert eigen_kernel_gradient.cpu_flags(str(tmp_path / "missing")) == frozenset()


@pytest.mark.parametrize("flags,faster", [
    ({"avx", "avx2", "fma"}, True),                 # the AVX2 EPYC it was measured on
    ({"avx", "avx2", "avx512f", "fma"}, False),     # Zen 4: YNNPACK is as fast
    (set(), False),                                 # not x86, or unknown
])
def test_eigen_is_chosen_on_avx2_cpus_without_avx512(flags, faster):
  assert eigen_kernel_gradient.eigen_is_faster(frozenset(flags)) is faster


@pytest.mark.parametrize("value,preferred", [("eigen", True), ("xla", False), ("EIGEN", True)])
def test_the_environment_variable_overrides_the_cpu(monkeypatch, value, preferred):
  monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
  monkeypatch.setenv(eigen_kernel_gradient.ENVIRONMENT_VARIABLE, value)
  eigen_kernel_gradient._choice.cache_clear()
  try:
    assert eigen_kernel_gradient.preferred_here() is preferred
  finally:
    eigen_kernel_gradient._choice.cache_clear()


def test_an_unknown_choice_names_the_variable_and_the_fix(monkeypatch):
  monkeypatch.setenv(eigen_kernel_gradient.ENVIRONMENT_VARIABLE, "ynnpack")
  eigen_kernel_gradient._choice.cache_clear()
  try:
    with pytest.raises(ValueError, match="VQJAX_KERNEL_GRADIENT='ynnpack'.*auto, eigen, xla"):
      eigen_kernel_gradient._choice()
  finally:
    eigen_kernel_gradient._choice.cache_clear()


def test_the_drop_in_splits_the_batch_inside_with_spare_threads(monkeypatch):
  monkeypatch.setattr(eigen_kernel_gradient, "preferred_here", lambda: True)
  monkeypatch.setattr(batch_split, "host_threads", lambda: 2)
  x, w = array((4, 8, 8, 8), 0), array((3, 3, 8, 8), 1)
  conv = lambda x, w: convolution.conv_general_dilated(x, w, (1, 1), "SAME",
                                                       dimension_numbers=NHWC)
  assert str(jax.make_jaxpr(conv)(x, w)).count("custom_vjp_call") == 1
  # two parts: a convolution and an input gradient each, one kernel gradient
  jaxpr = str(jax.make_jaxpr(jax.grad(sum_of_sines(conv), 1))(x, w))
  assert jaxpr.count("conv_general_dilated[") == 5
  expected = jax.grad(sum_of_sines(lambda x, w: lax_conv(x, w, "SAME")), 1)(x, w)
  np.testing.assert_allclose(jax.grad(sum_of_sines(conv), 1)(x, w), expected,
                             rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("preferred", [True, False])
def test_the_drop_in_takes_this_path_where_preferred_and_routable(monkeypatch, preferred):
  monkeypatch.setattr(eigen_kernel_gradient, "preferred_here", lambda: preferred)
  x, w = array((2, 16, 16, 8), 0), array((3, 3, 8, 8), 1)
  conv = lambda x, w: convolution.conv_general_dilated(x, w, (1, 1), "SAME",
                                                       dimension_numbers=NHWC)
  assert ("custom_vjp_call" in str(jax.make_jaxpr(conv)(x, w))) is preferred
  grads = jax.grad(sum_of_sines(conv), (0, 1))(x, w)
  expected = jax.grad(sum_of_sines(lambda x, w: lax_conv(x, w, "SAME")), (0, 1))(x, w)
  for ours, lax in zip(grads, expected):
    np.testing.assert_allclose(ours, lax, rtol=1e-4, atol=1e-4)


def test_never_off_the_cpu(monkeypatch):
  monkeypatch.setenv(eigen_kernel_gradient.ENVIRONMENT_VARIABLE, "eigen")
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  eigen_kernel_gradient._choice.cache_clear()
  try:
    assert not eigen_kernel_gradient.preferred_here()
  finally:
    eigen_kernel_gradient._choice.cache_clear()
