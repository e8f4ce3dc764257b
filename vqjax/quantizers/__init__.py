"""Quantizers as pure functions: state in, state out; jit, vmap, grad and pmap safe.

Every family is a namespace with the same verbs:

    family.quantize(z, ...)                        -> a NamedTuple: quantized, indices, losses
    family.indices_to_codes(indices, ...)          -> code vectors [..., dim]
    family.codebook_metrics(indices, ..., axis_name=None)  -> perplexity, codes used, dead codes

    vq        one codebook [K, dim]            (quantize, indices_to_codes = lookup)
    residual  a stack of codebooks [Q, K, dim] on successive residuals
    grouped   dim split into G groups, codebooks [G, K, dim / G]
    fsq       finite scalar quantization, an implicit grid of prod(levels) codes
    lfq       lookup-free quantization, the 2^dim sign vectors
    gumbel    Gumbel-softmax over logits [..., K] and a codebook [K, dim]

Shared parts: `ema` (EMA codebooks), `restart` (dead codes), `initialization` (random and
k-means codebooks), `search` (nearest codes), `metrics` (usage), `levels` (state of a
stack of codebooks). The names below keep VQ (and the residual and grouped functions)
at the top level.
"""
from vqjax.quantizers import ema
from vqjax.quantizers import initialization
from vqjax.quantizers import metrics
from vqjax.quantizers import restart
from vqjax.quantizers import search
from vqjax.quantizers import levels
from vqjax.quantizers import vector_quantization
from vqjax.quantizers import vector_quantization as vq
from vqjax.quantizers import fsq, gumbel, grouped, lfq, residual
from vqjax.quantizers.ema import EMACodebookState
from vqjax.quantizers.initialization import kmeans_codebook, random_codebook
from vqjax.quantizers.metrics import code_counts, codebook_metrics
from vqjax.quantizers.restart import restart_dead_codes, restart_dead_codes_ema, update_usage
from vqjax.quantizers.search import nearest_code_indices, squared_distances
from vqjax.quantizers.vector_quantization import (VQOutput, indices_to_codes, lookup, quantize,
                                                  rotation_trick, straight_through, vq_losses)
from vqjax.quantizers.fsq import FSQOutput
from vqjax.quantizers.gumbel import GumbelOutput
from vqjax.quantizers.lfq import LFQOutput
from vqjax.quantizers.grouped import indices_to_codes as grouped_lookup
from vqjax.quantizers.grouped import quantize as grouped_quantize
from vqjax.quantizers.residual import indices_to_codes as residual_lookup
from vqjax.quantizers.residual import quantize as residual_quantize
