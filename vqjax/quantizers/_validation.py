"""Input checks shared by every quantizer: clear errors before anything compiles."""
from __future__ import annotations

import jax.numpy as jnp


def check_vectors(z, dim: int | None = None, name: str = "z") -> None:
  """Checks that `z` is a floating array of shape [..., dim]."""
  shape = getattr(z, "shape", None)
  if shape is None:
    raise ValueError(f"{name} must be an array of shape [..., dim]; got {type(z).__name__}")
  if len(shape) < 1:
    raise ValueError(
        f"{name} has rank 0; quantizers take inputs of shape [..., dim], "
        "e.g. [batch, height, width, dim]")
  if not jnp.issubdtype(z.dtype, jnp.floating):
    raise ValueError(
        f"{name} has dtype {z.dtype}; quantizers take floating inputs "
        f"(float32 or bfloat16): cast with {name}.astype(jnp.float32)")
  if dim is not None and shape[-1] != dim:
    raise ValueError(
        f"{name} has last dimension {shape[-1]} but the codebook has dimension {dim}; "
        f"project {name} to {dim} channels or build the codebook with dim={shape[-1]}")


def check_codebook(codebook) -> None:
  """Checks that `codebook` is a floating [codebook_size, dim] array with codebook_size >= 1."""
  shape = getattr(codebook, "shape", None)
  if shape is None or len(shape) != 2:
    raise ValueError(
        f"codebook must have rank 2, [codebook_size, dim]; got shape {shape}")
  check_codebook_size(shape[0])
  if not jnp.issubdtype(codebook.dtype, jnp.floating):
    raise ValueError(f"codebook has dtype {codebook.dtype}; it must be floating (float32)")


def check_codebook_size(codebook_size: int) -> None:
  if int(codebook_size) < 1:
    raise ValueError(f"codebook size is {codebook_size}; it must be at least 1")


def check_indices(indices, name: str = "indices") -> None:
  if not jnp.issubdtype(jnp.asarray(indices).dtype, jnp.integer):
    raise ValueError(f"{name} has dtype {jnp.asarray(indices).dtype}; code indices must be integers")


def check_choice(value: str, choices: tuple[str, ...], name: str) -> None:
  if value not in choices:
    raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(map(repr, choices))}")
