"""Tests for vqjax.quantizers._validation: errors name the problem and the fix."""
import jax.numpy as jnp
import pytest

from vqjax.quantizers import _validation as validation


def test_good_inputs_pass():
  validation.check_vectors(jnp.zeros((2, 3, 4)), 4)
  validation.check_vectors(jnp.zeros((4,), jnp.bfloat16))
  validation.check_codebook(jnp.zeros((8, 4)))
  validation.check_indices(jnp.zeros((3,), jnp.int32))


@pytest.mark.parametrize("call, message", [
    (lambda: validation.check_vectors(jnp.zeros((2, 5)), 4), "last dimension 5 .* dimension 4"),
    (lambda: validation.check_vectors(jnp.zeros(()), None), "rank 0"),
    (lambda: validation.check_vectors(jnp.zeros((2, 4), jnp.int32)), "astype"),
    (lambda: validation.check_vectors([1.0, 2.0]), "must be an array"),
    (lambda: validation.check_codebook(jnp.zeros((4,))), "rank 2"),
    (lambda: validation.check_codebook(jnp.zeros((0, 4))), "codebook size is 0"),
    (lambda: validation.check_codebook(jnp.zeros((3, 4), jnp.int8)), "floating"),
    (lambda: validation.check_indices(jnp.zeros((3,))), "integers"),
    (lambda: validation.check_choice("x", ("a", "b"), "metric"), "unknown metric 'x'"),
])
def test_bad_inputs_raise_with_a_clear_message(call, message):
  with pytest.raises(ValueError, match=message):
    call()
