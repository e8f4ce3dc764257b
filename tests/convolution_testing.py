"""Helpers shared by the tests of vqjax's convolution paths: random inputs, the lax
reference, and a loss whose gradients reach every output."""
import jax
import jax.numpy as jnp
import numpy as np

NHWC = ("NHWC", "HWIO", "NHWC")


def array(shape, seed, dtype=jnp.float32):
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape), dtype)


def lax_conv(x, w, padding):
  return jax.lax.conv_general_dilated(x, w, (1, 1), padding, dimension_numbers=NHWC)


def sum_of_sines(conv):
  return lambda x, w: jnp.sum(jnp.sin(conv(x, w)))
