"""What every tokenizer model exposes to training: its quantizer layers and token grids,
keyed by metric prefix ('' for one grid; 'top/' and 'bottom/' for a VQ-VAE-2)."""
from __future__ import annotations

from typing import Any

import flax.linen as nn

from vqjax.models.vqvae2 import VQVAE2, VQVAE2Output


def quantizers_of(model: nn.Module) -> dict[str, nn.Module]:
  """The model's quantizer layers by metric prefix: {'': q} or {'top/': q, 'bottom/': q}."""
  if isinstance(model, VQVAE2):
    return {"top/": model.top_quantizer, "bottom/": model.bottom_quantizer}
  return {"": model.quantizer}


def token_grids(output) -> dict[str, Any]:
  """A model output's token grids, keyed like quantizers_of."""
  if isinstance(output, VQVAE2Output):
    return {"top/": output.top_indices, "bottom/": output.bottom_indices}
  return {"": output.indices}


def codebook_size(quantizer: nn.Module) -> int:
  """The number of codes one index of the quantizer can take (its `num_codes`)."""
  return quantizer.num_codes
