"""Corpora, token shards and the shared-data helper.

``Corpus`` reads text files, HF datasets or the built-in sample; ``prepare_shards`` /
``TokenShards`` turn a corpus into memory-mapped token arrays.
"""

from .corpus import Corpus, CorpusWarning
from .shards import TokenShards, prepare_shards

__all__ = ["Corpus", "CorpusWarning", "TokenShards", "prepare_shards"]
