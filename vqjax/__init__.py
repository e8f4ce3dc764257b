"""vqjax: vector-quantized autoencoders and token-grid priors in JAX."""
__version__ = "0.1.0"
