"""The kernel gradient of a stride-1 convolution on XLA:CPU's Eigen convolution instead of
YNNPACK, which runs it at about half of Eigen's speed on an AVX2 CPU.

The kernel gradient of y = corr(x, K) (padding (top, bottom), (left, right)) is

    dK[i, j, c, o] = sum over n, p, q of pad(x)[n, p + i, q + j, c] * dy[n, p, q, o]

a convolution of x, its batch and channel axes swapped, with dy as the kernel. JAX writes
it so, and XLA:CPU (jaxlib 0.10) gives it to YNNPACK, which on a 2-core AMD EPYC with AVX2
runs it at 33-55 GFLOP/s on one thread (4 x 64x64x64 to 64: 37.0 ms; torch 17.9 ms).
Eigen's convolution runs the same sums at 65-74 GFLOP/s (17.2 ms), and splits them between
threads (experiments.bench_kernel_gradient). XLA takes
every convolution YNNPACK supports to YNNPACK; one whose kernel is taller than its input
it leaves to Eigen. So dy gets zero rows at the bottom (kernel rows one more than x's)
and x as many more rows of high padding: the same sums. x's column padding is applied
before the convolution, behind an optimization barrier: folded into the window, it would
leave a kernel with more positions than its input, whose operands XLA then swaps and runs
in a generic loop at ~1 GFLOP/s (`routable` checks that this cannot happen).

Where this pays is the CPU's business: on a Zen 4 core (AVX-512) YNNPACK runs these
kernel gradients at ~93 GFLOP/s, and taking every convolution to Eigen made a VQGAN step
slower there. `preferred_here` takes this path on the CPU backend of an x86 CPU without
AVX-512, or as VQJAX_KERNEL_GRADIENT ('eigen' or 'xla') says.
"""
from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp

from vqjax.models import batch_split, reversed_input_gradient

_NHWC = ("NHWC", "HWIO", "NHWC")
# x [N, H, W, C] read with C as the batch and N as the feature axis; dy [N, H, W, O] as a
# kernel with N as its input features; the result [C, kh, kw, O].
_KERNEL_GRADIENT_DIMENSIONS = ("CHWN", "IHWO", "NHWC")
ENVIRONMENT_VARIABLE = "VQJAX_KERNEL_GRADIENT"
_CHOICES = ("auto", "eigen", "xla")


def cpu_flags(cpuinfo_path: str = "/proc/cpuinfo") -> frozenset[str]:
  """The instruction-set flags of this machine's first CPU (empty where unreadable)."""
  try:
    with open(cpuinfo_path, encoding="utf-8") as cpuinfo:
      for line in cpuinfo:
        if line.startswith("flags"):
          return frozenset(line.split(":", 1)[1].split())
  except OSError:
    pass
  return frozenset()


def eigen_is_faster(flags: frozenset[str]) -> bool:
  """True on the CPUs where Eigen was measured faster: x86 with AVX2, without AVX-512."""
  return "avx2" in flags and "avx512f" not in flags


@functools.cache
def _choice() -> str:
  choice = os.environ.get(ENVIRONMENT_VARIABLE, "auto").strip().lower() or "auto"
  if choice not in _CHOICES:
    raise ValueError(f"{ENVIRONMENT_VARIABLE}={choice!r} is not one of {', '.join(_CHOICES)}; "
                     "unset it to let vqjax choose by the CPU")
  return choice


def preferred_here() -> bool:
  """Whether convolutions traced now take their kernel gradient to Eigen: on the CPU
  backend, by VQJAX_KERNEL_GRADIENT, else where `eigen_is_faster` for this CPU."""
  if jax.default_backend() != "cpu":
    return False
  choice = _choice()
  if choice != "auto":
    return choice == "eigen"
  return _eigen_is_faster_here()


@functools.cache
def _eigen_is_faster_here() -> bool:
  return eigen_is_faster(cpu_flags())


def _extra_rows(input_rows: int, output_rows: int) -> int:
  """Zero rows to add under dy so that it is taller than x."""
  return max(1, input_rows - output_rows + 1)


def routable(lhs_shape, rhs_shape, padding, dtype) -> bool:
  """True where the kernel gradient of this stride-1 NHWC/HWIO convolution (explicit
  padding) reaches Eigen: float32, a kernel of at least 2x2, and a dy (with its extra rows)
  that covers fewer positions than x with its column padding, so XLA keeps the operands
  in place."""
  if jnp.dtype(dtype) != jnp.float32 or min(rhs_shape[:2]) < 2:
    return False
  rows, columns = lhs_shape[1:3]
  output_rows, output_columns = reversed_input_gradient.output_shape(
      lhs_shape, rhs_shape, padding)[1:3]
  padded_columns = columns + sum(padding[1])
  kernel_positions = (output_rows + _extra_rows(rows, output_rows)) * output_columns
  return output_columns >= 1 and kernel_positions <= rows * padded_columns


def kernel_gradient(lhs, cotangent, kernel_size, padding, precision=None):
  """dK of the stride-1 convolution of lhs [N, H, W, C] (explicit padding) given dy
  [N, H', W', O]: [kh, kw, C, O], computed as Eigen's convolution (module docstring)."""
  (top, bottom), (left, right) = padding
  extra = _extra_rows(lhs.shape[1], cotangent.shape[1])
  columns_padded = jax.lax.optimization_barrier(
      jnp.pad(lhs, ((0, 0), (0, 0), (left, right), (0, 0))))
  taller = jnp.pad(cotangent, ((0, 0), (0, extra), (0, 0), (0, 0)))
  gradient = jax.lax.conv_general_dilated(
      columns_padded, taller, (1, 1), ((top, bottom + extra), (0, 0)),
      dimension_numbers=_KERNEL_GRADIENT_DIMENSIONS, precision=precision)
  return jnp.transpose(gradient, (1, 2, 0, 3))


def _convolve(lhs, rhs, padding, precision):
  return jax.lax.conv_general_dilated(lhs, rhs, (1, 1), padding, dimension_numbers=_NHWC,
                                      precision=precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def conv(lhs, rhs, padding, precision=None, reverse_input_gradient=False, batch_parts=1):
  """jax.lax.conv_general_dilated(lhs, rhs, (1, 1), padding, dimension_numbers=
  ('NHWC', 'HWIO', 'NHWC')) whose kernel gradient is `kernel_gradient`; the input gradient
  is JAX's, or `reversed_input_gradient`'s where reverse_input_gradient. batch_parts > 1
  computes the convolution and its input gradient per part of the batch (`batch_split`),
  the kernel gradient once. padding: a tuple of (low, high) pairs; take it only where
  `routable`."""
  return _convolution_per_part(lhs, rhs, padding, precision, batch_parts)


def _convolution_per_part(lhs, rhs, padding, precision, batch_parts):
  return _per_part(lambda x: _convolve(x, rhs, padding, precision), lhs, batch_parts)


def _per_part(function, batch, parts):
  if parts == 1:
    return function(batch)
  return jnp.concatenate([function(batch[start:stop])
                          for start, stop in batch_split.bounds(batch.shape[0], parts)])


def _conv_forward(lhs, rhs, padding, precision, reverse_input_gradient, batch_parts):
  return _convolution_per_part(lhs, rhs, padding, precision, batch_parts), (lhs, rhs)


def _input_gradient(rhs, cotangent, padding, precision, reverse_input_gradient):
  if reverse_input_gradient:
    return reversed_input_gradient.input_gradient(rhs, cotangent, padding, precision)
  lhs_shape = reversed_input_gradient.input_shape(cotangent.shape, rhs.shape, padding)
  transpose = jax.linear_transpose(lambda x: _convolve(x, rhs, padding, precision),
                                   jax.ShapeDtypeStruct(lhs_shape, rhs.dtype))
  return transpose(cotangent)[0]


def _conv_backward(padding, precision, reverse_input_gradient, batch_parts, residuals,
                   cotangent):
  lhs, rhs = residuals
  lhs_cotangent = _per_part(
      lambda dy: _input_gradient(rhs, dy, padding, precision, reverse_input_gradient),
      cotangent, batch_parts)
  rhs_cotangent = kernel_gradient(lhs, cotangent, rhs.shape[:2], padding, precision)
  return lhs_cotangent.astype(lhs.dtype), rhs_cotangent.astype(rhs.dtype)


conv.defvjp(_conv_forward, _conv_backward)
