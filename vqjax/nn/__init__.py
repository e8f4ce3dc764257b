"""Thin Flax linen layers over the pure functions of vqjax.quantizers, for use inside models.

Every layer returns a `QuantizerOutput` and has `input_dim`, `num_codes` and
`decode_indices` (the contract in vqjax.nn.output); `QUANTIZER_LAYERS` holds them by name.
"""
from vqjax.nn import output
from vqjax.nn import quantizer_layers
from vqjax.nn import registry
from vqjax.nn import scalar_quantizer_layers
from vqjax.nn.output import QuantizerOutput
from vqjax.nn.quantizer_layers import (GroupedVectorQuantizer, ResidualVectorQuantizer,
                                       VectorQuantizer, with_kmeans_codebook)
from vqjax.nn.registry import QUANTIZER_LAYERS, register_quantizer
from vqjax.nn.scalar_quantizer_layers import FSQ, LFQ, GumbelQuantizer
