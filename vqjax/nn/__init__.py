"""Thin Flax linen layers over the pure functions of vqjax.quantizers, for use inside models."""
from vqjax.nn import quantizer_layers
from vqjax.nn import scalar_quantizer_layers
from vqjax.nn.quantizer_layers import (GroupedVectorQuantizer, ResidualVectorQuantizer,
                                       VectorQuantizer, VQLayerOutput, with_kmeans_codebook)
from vqjax.nn.scalar_quantizer_layers import (FSQ, LFQ, FSQLayerOutput, GumbelLayerOutput,
                                              GumbelQuantizer, LFQLayerOutput)
