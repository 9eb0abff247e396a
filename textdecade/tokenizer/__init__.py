"""The shared tokenizer: byte-level BPE (default) or sentencepiece, one JSON file.

See :class:`Tokenizer`.
"""

from .specials import SPECIAL_TOKENS
from .tokenizer import Tokenizer

__all__ = ["SPECIAL_TOKENS", "Tokenizer"]
