"""Token grids for the priors: a dataset split encoded by a trained tokenizer, cached to
disk with the checkpoint step that made it, and read back in batches.

Above vqjax.train (it restores the tokenizer through vqjax.runner.experiment and
vqjax.train.checkpoints), below the priors' training.

    grids.py   encode_split, load_token_grids, select_grids, make_token_iterator,
               TokenGrids
"""
from vqjax.tokens import grids
from vqjax.tokens.grids import (StaleCacheError, TokenGrids, cache_path, encode_split,
                                latest_checkpoint_step, load_token_grids, make_token_iterator,
                                restore_tokenizer, select_grids)
