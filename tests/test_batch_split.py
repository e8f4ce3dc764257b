"""vqjax.models.batch_split and its use in convolution.conv_general_dilated: a convolution
whose output channels leave threads idle is split over its batch, with the same values and
gradients."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vqjax.models import batch_split, convolution, eigen_kernel_gradient

NHWC = ("NHWC", "HWIO", "NHWC")


def _array(shape, seed):
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def _convolutions(fn, *args):
  return sum(equation.primitive.name == "conv_general_dilated"
             for equation in jax.make_jaxpr(fn)(*args).jaxpr.eqns)


@pytest.mark.parametrize("batch,channels,threads,parts", [
    (4, 64, 2, 2),    # one block of 64 outputs: one thread busy, so two parts
    (4, 3, 2, 2),     # an RGB output layer
    (4, 65, 2, 1),    # two blocks already feed two threads
    (4, 128, 2, 1),
    (4, 64, 1, 1),    # one thread: nothing to gain
    (1, 64, 2, 1),    # one example cannot be split
    (4, 64, 4, 4),
    (4, 128, 4, 2),   # two blocks x two parts for four threads
    (2, 32, 8, 2),    # at most one example per part
    (8, 256, 4, 1),
])
def test_batch_parts(batch, channels, threads, parts):
  assert batch_split.batch_parts(batch, channels, threads) == parts


@pytest.mark.parametrize("batch,parts,expected", [
    (4, 2, [(0, 2), (2, 4)]), (5, 2, [(0, 3), (3, 5)]), (7, 3, [(0, 3), (3, 5), (5, 7)]),
    (3, 1, [(0, 3)]),
])
def test_bounds_cover_the_batch_in_near_equal_parts(batch, parts, expected):
  assert batch_split.bounds(batch, parts) == expected


def test_host_threads_is_this_process_affinity():
  expected = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
              else os.cpu_count())
  assert batch_split.host_threads() == expected >= 1


@pytest.mark.parametrize("shape,kernel,strides,padding,features,parts", [
    ((4, 8, 8, 5), (3, 3), (1, 1), "SAME", 7, 2),
    ((5, 9, 9, 3), (4, 4), (2, 2), ((1, 1), (1, 1)), 6, 2),   # PatchGAN-like, odd batch
    ((3, 9, 9, 4), (3, 3), (1, 1), "VALID", 3, 3),           # unpadded: cropped per part
    ((4, 2, 2, 4), (3, 3), (1, 1), "SAME", 5, 2),            # the matmul path, per part
])
def test_split_convolution_equals_lax_with_both_gradients(monkeypatch, shape, kernel, strides,
                                                          padding, features, parts):
  monkeypatch.setattr(batch_split, "host_threads", lambda: parts)
  x, w = _array(shape, 0), _array((*kernel, shape[-1], features), 1)
  ours = lambda x, w: convolution.conv_general_dilated(x, w, strides, padding,
                                                       dimension_numbers=NHWC)
  lax = lambda x, w: jax.lax.conv_general_dilated(x, w, strides, padding,
                                                  dimension_numbers=NHWC)
  np.testing.assert_allclose(ours(x, w), lax(x, w), rtol=1e-5, atol=1e-5)
  loss = lambda conv: lambda x, w: jnp.sum(jnp.sin(conv(x, w)))
  for ours_grad, lax_grad in zip(jax.grad(loss(ours), (0, 1))(x, w),
                                 jax.grad(loss(lax), (0, 1))(x, w)):
    np.testing.assert_allclose(ours_grad, lax_grad, rtol=1e-5, atol=1e-5)


def test_the_split_makes_one_convolution_per_part_only_with_spare_threads(monkeypatch):
  # The jaxpr shows the split's convolutions where no custom kernel gradient wraps them.
  monkeypatch.setattr(eigen_kernel_gradient, "preferred_here", lambda: False)
  x, w = _array((4, 8, 8, 5), 0), _array((3, 3, 5, 7), 1)
  # A new function each time: jax caches a function's trace, and the split is decided there.
  conv = lambda: lambda x, w: convolution.conv_general_dilated(x, w, (1, 1), "SAME",
                                                               dimension_numbers=NHWC)
  for threads, expected in ((1, 1), (2, 2), (4, 4), (16, 4)):
    monkeypatch.setattr(batch_split, "host_threads", lambda threads=threads: threads)
    assert _convolutions(conv(), x, w) == expected
  wide = _array((3, 3, 5, 128), 2)
  monkeypatch.setattr(batch_split, "host_threads", lambda: 2)
  assert _convolutions(conv(), x, wide) == 1


def test_no_split_off_the_cpu(monkeypatch):
  monkeypatch.setattr(batch_split, "host_threads", lambda: 8)
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  assert batch_split.parts_here(4, 64) == 1
  monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
  assert batch_split.parts_here(4, 64) == 4
