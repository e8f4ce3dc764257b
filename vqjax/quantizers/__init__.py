"""Quantizers as pure functions: state in, state out; jit, vmap, grad and pmap safe."""
from vqjax.quantizers import ema
from vqjax.quantizers import initialization
from vqjax.quantizers import metrics
from vqjax.quantizers import restart
from vqjax.quantizers import search
from vqjax.quantizers import validation
from vqjax.quantizers.ema import EMACodebookState
from vqjax.quantizers.initialization import kmeans_codebook, random_codebook
from vqjax.quantizers.metrics import code_counts, codebook_metrics
from vqjax.quantizers.restart import restart_dead_codes, restart_dead_codes_ema, update_usage
from vqjax.quantizers.search import (nearest_code_indices, plain_nearest_code_indices,
                                     squared_distances)
from vqjax.quantizers.vector_quantization import (VQOutput, lookup, quantize, rotation_trick,
                                                  straight_through, vq_losses)
from vqjax.quantizers import fsq, gumbel, lfq
from vqjax.quantizers.fsq import FSQOutput
from vqjax.quantizers.gumbel import GumbelOutput
from vqjax.quantizers.lfq import LFQOutput
from vqjax.quantizers import residual
from vqjax.quantizers.residual import (grouped_lookup, grouped_quantize, residual_lookup,
                                       residual_quantize)
