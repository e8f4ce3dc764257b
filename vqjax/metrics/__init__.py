"""Image-generation metrics on Inception features, on the host in float64: feature
statistics, FID, the Inception Score, KID, and a disk cache of a split's statistics.
The network is vqjax.models.inception; vqjax.runner.fid_evaluator runs it over batches."""
from vqjax.metrics.cache import (cached_statistics, load_statistics, save_statistics,
                                 statistics_cache_path, statistics_key)
from vqjax.metrics.frechet import fid, frechet_distance
from vqjax.metrics.images import inception_inputs
from vqjax.metrics.scores import inception_score, kernel_inception_distance
from vqjax.metrics.statistics import (FeatureStatistics, feature_statistics, init_statistics,
                                      mean_and_covariance, merge_statistics, update_statistics)
