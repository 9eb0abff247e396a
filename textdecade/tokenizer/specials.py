"""The special tokens every textdecade tokenizer reserves, with fixed ids 0..6.

Fixing the ids across backends means a model's embedding rows for padding, masking and
document boundaries mean the same thing whether the tokenizer is byte-level BPE or
sentencepiece, and batchers can hard-code ``pad_id=0`` without looking anything up.
"""

from __future__ import annotations

from collections.abc import Callable

#: (attribute name, token) in id order: ``<pad>`` is 0, ``<unk>`` 1, ... ``<mask>`` 6.
SPECIALS: tuple[tuple[str, str], ...] = (
    ("pad", "<pad>"),
    ("unk", "<unk>"),
    ("bos", "<s>"),
    ("eos", "</s>"),
    ("cls", "<cls>"),
    ("sep", "<sep>"),
    ("mask", "<mask>"),
)
SPECIAL_TOKENS: tuple[str, ...] = tuple(token for _, token in SPECIALS)
N_SPECIALS = len(SPECIALS)
#: The fixed ids, the one place they are written down (batchers and decoders use these).
PAD_ID, UNK_ID, BOS_ID, EOS_ID, CLS_ID, SEP_ID, MASK_ID = range(N_SPECIALS)

# Spellings used by imported tokenizers (BERT's WordPiece, GPT-2's byte-level BPE, ...),
# tried in order when a plain HF tokenizer.json is loaded.
_ALIASES: dict[str, tuple[str, ...]] = {
    "pad": ("<pad>", "[PAD]", "<|pad|>", "<|padding|>"),
    "unk": ("<unk>", "[UNK]", "<|unk|>"),
    "bos": ("<s>", "<bos>", "<|begin_of_text|>", "<|startoftext|>", "<|endoftext|>"),
    "eos": ("</s>", "<eos>", "<|end_of_text|>", "<|endoftext|>"),
    "cls": ("<cls>", "[CLS]", "<|cls|>"),
    "sep": ("<sep>", "[SEP]", "<|sep|>"),
    "mask": ("<mask>", "[MASK]", "<|mask|>"),
}


def find_specials(token_to_id: Callable[[str], int | None]) -> dict[str, int | None]:
    """Map each special role to its id in an imported vocabulary (None where absent).

    Args:
        token_to_id: lookup returning the id of a token string, or None.

    Returns:
        ``{"pad": id|None, "unk": ..., "bos": ..., "eos": ..., "cls": ..., "sep": ...,
        "mask": ...}``.
    """
    found: dict[str, int | None] = {}
    for name, spellings in _ALIASES.items():
        found[name] = next((i for i in (token_to_id(s) for s in spellings) if i is not None), None)
    return found
