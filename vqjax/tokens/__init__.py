"""Token grids for the priors: encoded by a tokenizer, cached, read back in batches.

    grids.py   encode_grids, save_token_grids, read_token_grids, select_grids,
               make_token_iterator, TokenGrids
"""
from vqjax.tokens import grids
from vqjax.tokens.grids import (TokenGrids, cache_file_name, encode_grids, make_token_iterator,
                                read_token_grids, save_token_grids, select_grids)
