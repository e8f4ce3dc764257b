"""Records what taming-transformers computes, so that CI checks the conversion without torch
(needs torch and taming: pip install -e .[bench]):

    python tests/record_taming_reference.py

  data/taming_reference.npz   taming's z_e, indices and decoded images of IMAGES, by its
                              own modules holding reference_params() (drawn by NumPy from a
                              seed, so the test draws them again), and the arrays that
                              data/taming_written.ckpt holds
  data/taming_written.ckpt    a Lightning-style dict written by torch.save: a state_dict of
                              float32 (one transposed, one a view at an offset), float16,
                              bfloat16 and int64 tensors and a Parameter, beside
                              hyper-parameters pickled as an argparse.Namespace and an
                              optimizer state, which the reader must leave alone
Not collected by pytest; tests/test_taming_checkpoint.py reads both without torch.
"""
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
REFERENCE = os.path.join(DATA, "taming_reference.npz")
WRITTEN = os.path.join(DATA, "taming_written.ckpt")
# taming's model.params of a small model with every block kind: two levels (a downsample and
# an upsample), attention at side 4 and in the middle, a 1x1 shortcut.
CONFIG = dict(ddconfig=dict(double_z=False, z_channels=8, resolution=8, in_channels=3,
                            out_ch=3, ch=32, ch_mult=[1, 2], num_res_blocks=1,
                            attn_resolutions=[4], dropout=0.0), n_embed=16, embed_dim=8)


def reference_images() -> np.ndarray:
  return np.random.default_rng(0).uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)


def reference_params() -> dict:
  """VQGAN params of CONFIG drawn by NumPy (seed 0, paths in sorted order): kernels at
  1 / sqrt(fan-in), norm scales near 1, small biases, codes of unit scale."""
  from vqjax.models import taming_checkpoint  # pylint: disable=import-outside-toplevel
  from vqjax.runner.build import build_model  # pylint: disable=import-outside-toplevel
  model = build_model(taming_checkpoint.taming_architecture(CONFIG).model, axis_name=None)
  shapes = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False),
                          jax.ShapeDtypeStruct((1, 8, 8, 3), jnp.float32))["params"]
  rng = np.random.default_rng(0)
  flat = {}
  for path, leaf in sorted(traverse_util.flatten_dict(shapes).items()):
    draw = rng.normal(size=leaf.shape)
    if path[-1] == "kernel":
      draw /= np.sqrt(np.prod(leaf.shape[:-1]))
    elif path[-1] == "scale":
      draw = 1 + 0.1 * draw
    elif path[-1] == "bias":
      draw *= 0.1
    flat[path] = draw.astype(np.float32)
  return traverse_util.unflatten_dict(flat)


def written_arrays() -> dict:
  """What taming_written.ckpt's state_dict holds, as NumPy arrays (bfloat16 as float32)."""
  base = np.arange(12, dtype=np.float32).reshape(3, 4)
  return {"transposed": base.T, "view_at_offset": base.reshape(-1)[5:9],
          "half": np.array([0.5, -2.0, 3.25], np.float16),
          "bfloat16": np.array([1.5, -0.25], np.float32), "long": np.arange(5, dtype=np.int64),
          "parameter": np.full((2, 2), 7.0, np.float32), "scalar": np.array(3.0, np.float32)}


def main():
  import argparse  # pylint: disable=import-outside-toplevel
  import collections  # pylint: disable=import-outside-toplevel

  import torch  # pylint: disable=import-outside-toplevel

  import taming_testing  # pylint: disable=import-outside-toplevel
  from vqjax.models import taming_checkpoint  # pylint: disable=import-outside-toplevel

  model = taming_testing.TamingVQModel(**CONFIG)
  state_dict = taming_checkpoint.to_taming_state_dict(reference_params())
  model.load_state_dict({k: torch.from_numpy(v) for k, v in state_dict.items()}, strict=True)
  outputs = model.outputs(reference_images())
  expected = written_arrays()
  base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
  written = collections.OrderedDict(
      transposed=base.t(), view_at_offset=base.reshape(-1)[5:9],
      half=torch.tensor(expected["half"]), bfloat16=torch.tensor([1.5, -0.25]).bfloat16(),
      long=torch.arange(5), parameter=torch.nn.Parameter(torch.full((2, 2), 7.0)),
      scalar=torch.tensor(3.0))
  torch.save({"state_dict": written, "global_step": 7, "epoch": 1,
              "hyper_parameters": {"args": argparse.Namespace(lr=4.5e-6)},
              "optimizer_states": [{"state": {0: {"exp_avg": torch.ones(3)}}}]}, WRITTEN)
  np.savez_compressed(REFERENCE, images=reference_images(), **outputs,
                      **{f"written/{k}": v for k, v in expected.items()})
  print(f"wrote {REFERENCE} ({', '.join(outputs)}) and {WRITTEN}")


if __name__ == "__main__":
  main()
