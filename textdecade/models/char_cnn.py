"""ELMo's character-level token encoder (Peters et al. 2018, sec. 3.4; Kim et al. 2016).

The project has one BPE tokenizer, so ELMo's "tokens" are its pieces, and the character
CNN reads each piece's characters. Characters are **UTF-8 bytes**: every piece of any
vocabulary is a byte string (a byte-level BPE piece is mapped back through GPT-2's
byte-to-unicode table, so ``Ġbank`` reads as the bytes `` bank``, the leading space being
the word boundary), so no character set can lack a character. Each piece becomes one row
of a fixed (V, max_chars) char-id table, built once from the tokenizer's vocabulary at
prepare time (the pieces' bytes are stored in the prepared data's meta)::

    char ids:  0 padding | 1..256 byte b as b + 1 | 257 begin-of-word | 258 end-of-word
               | 259 + k the special token of id k (<pad>, <unk>, <s>, </s>, ...)
    row:       [begin-of-word, bytes..., end-of-word, padding...]

A piece whose bytes do not fit (longer than ``max_chars - 2``) is cut to its first
``max_chars - 2`` bytes, as bilm-tf and AllenNLP cut words at 50 characters. On real text
the cut pieces are rare runs of one character (a BPE of 8,000 pieces on corpus_en holds a
96-byte run of box-drawing lines), and cut pieces sharing a prefix share a row; prepare
says how many were cut (:func:`cut_pieces`) and which ``max_chars`` keeps them whole.

Then, per piece: char embeddings -> one convolution per width (each with its number of
filters) max-pooled over the characters -> highway layers -> a linear projection to the
model's width (the paper: 2048 filters of widths 1-7, two highway layers, 512 out).

Dimensions: V pieces, C = max_chars, E = char_dim, F = total filters, D = d_model.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from textdecade.errors import ConfigError

PAD_CHAR, BOW_CHAR, EOW_CHAR, FIRST_SPECIAL_CHAR = 0, 257, 258, 259
N_SPECIAL_CHARS = 16  # room for the tokenizer's fixed special ids 0..6 and a few more
CHAR_VOCAB = FIRST_SPECIAL_CHAR + N_SPECIAL_CHARS


@functools.cache
def _byte_decoder() -> dict[str, int]:
    """GPT-2's printable stand-in character -> the byte it stands for (byte-level BPE)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    chars = list(printable)
    shifted = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + shifted)
            shifted += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def piece_bytes(tokenizer: Any) -> list[str | None]:
    """Each id's piece as hex of its UTF-8 bytes (None for a special token), for the meta.

    Byte-level BPE pieces are mapped back to their bytes; other backends' pieces are
    encoded as UTF-8 with sentencepiece's ``▁`` read as a space.
    """
    specials = set(tokenizer.specials.values())
    decoder = _byte_decoder()
    byte_level = getattr(tokenizer, "backend", "") == "bpe"
    out: list[str | None] = []
    for i in range(int(tokenizer.vocab_size)):
        piece = tokenizer.id_to_token(i)
        if i in specials or piece is None:
            out.append(None)
        elif byte_level and all(ch in decoder for ch in piece):
            out.append(bytes(decoder[ch] for ch in piece).hex())
        else:
            out.append(piece.replace("▁", " ").encode("utf-8").hex())
    return out


def cut_pieces(pieces: Sequence[str | None], max_chars: int) -> list[tuple[str, int]]:
    """``(text, bytes)`` of the pieces longer than ``max_chars - 2`` bytes, longest first:
    the ones :func:`char_table` cuts (the text for messages: a piece may end mid-character)."""
    long = sorted((p for p in pieces if p is not None and len(p) // 2 > max_chars - 2), key=len)
    return [(bytes.fromhex(p).decode("utf-8", "replace"), len(p) // 2) for p in reversed(long)]


def char_table(pieces: Sequence[str | None], vocab_size: int, max_chars: int) -> torch.Tensor:
    """The (V, C) int64 char-id table of the module docstring.

    Args:
        pieces: per id, hex of its bytes, or None for a special token (from :func:`piece_bytes`).
        vocab_size: V (ids past ``len(pieces)``, a padded vocabulary, read as ``<unk>``).
        max_chars: C (a longer piece keeps its first C - 2 bytes, see the module docstring).
    """
    table = torch.full((vocab_size, max_chars), PAD_CHAR, dtype=torch.long)
    for i in range(vocab_size):
        piece = pieces[i] if i < len(pieces) else None
        if piece is None:
            special = i if i < len(pieces) else 1  # beyond the tokenizer: <unk>'s
            body = [FIRST_SPECIAL_CHAR + min(special, N_SPECIAL_CHARS - 1)]
        else:
            body = [b + 1 for b in bytes.fromhex(piece)[: max_chars - 2]]
        row = [BOW_CHAR, *body, EOW_CHAR]
        table[i, : len(row)] = torch.tensor(row)
    return table


class Highway(nn.Module):
    """``g * relu(W_h x) + (1 - g) * x`` with ``g = sigmoid(W_g x)`` (Srivastava et al. 2015).

    The gate's bias starts at -2 so each layer first carries its input (bilm-tf's init).
    """

    def __init__(self, width: int, n_layers: int):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(width, 2 * width) for _ in range(n_layers))
        for layer in self.layers:
            nn.init.constant_(layer.bias[width:], -2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., F) -> (..., F)."""
        for layer in self.layers:
            transform, gate = layer(x).chunk(2, dim=-1)
            g = torch.sigmoid(gate)
            x = g * F.relu(transform) + (1 - g) * x
        return x


class CharCNN(nn.Module):
    """Piece ids -> char rows -> convolutions, max-pool, highway, projection: (..., D).

    Args:
        table: the (V, C) char-id table (a buffer, rebuilt from the meta when loaded).
        char_dim: E.  filters: ``(width, count)`` pairs.  n_highway: highway layers.
        d_model: D, the projection's width.
    """

    def __init__(
        self,
        table: torch.Tensor,
        char_dim: int,
        filters: Sequence[Sequence[int]],
        n_highway: int,
        d_model: int,
    ):
        super().__init__()
        # Columns past the longest piece plus the widest filter are padding in every row:
        # they only add more all-padding windows, whose output (relu of the bias: padding's
        # embedding is zero) a kept all-padding window already gives, so no max changes.
        # Dropping them is exact and, for BPE pieces in the paper's 50 columns, ~2x faster.
        longest = int((table != PAD_CHAR).sum(1).max()) if len(table) else 0
        keep = min(table.shape[1], longest + max(w for w, _ in filters))
        self.register_buffer("table", table[:, :keep].contiguous(), persistent=False)
        self.char_embedding = nn.Embedding(CHAR_VOCAB, char_dim, padding_idx=PAD_CHAR)
        self.convs = nn.ModuleList(nn.Conv1d(char_dim, n, w) for w, n in filters)
        width = sum(n for _, n in filters)
        self.highway = Highway(width, n_highway)
        self.projection = nn.Linear(width, d_model)

    def encode_chars(self, chars: torch.Tensor) -> torch.Tensor:
        """(N, C) char ids -> (N, D) piece vectors."""
        x = self.char_embedding(chars).transpose(1, 2)  # (N, C, E) -> (N, E, C)
        # each width's filters, ReLU, max over character positions (bilm-tf's order)
        pooled = [F.relu(conv(x)).amax(dim=-1) for conv in self.convs]  # each (N, n_w)
        return self.projection(self.highway(torch.cat(pooled, dim=-1)))  # (N, F) -> (N, D)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, T) piece ids -> (B, T, D). Each distinct id is encoded once per call."""
        unique, inverse = torch.unique(ids, return_inverse=True)  # a batch repeats pieces
        return self.encode_chars(self.table[unique])[inverse]

    def all_pieces(self, batch: int = 4096) -> torch.Tensor:
        """(V, D) vectors of every piece (the context-free table)."""
        rows = [
            self.encode_chars(self.table[s : s + batch]) for s in range(0, len(self.table), batch)
        ]
        return torch.cat(rows)


def check_filters(filters: Sequence[Sequence[int]], max_chars: int) -> None:
    """One-line errors for a filter list the CNN cannot build or apply."""
    if not filters:
        raise ConfigError("model.char_filters needs at least one [width, count] pair")
    for pair in filters:
        if len(pair) != 2 or min(pair) < 1:
            raise ConfigError(
                f"model.char_filters: each entry is [width, count] of positive integers, got {list(pair)}"
            )
        if pair[0] > max_chars:
            raise ConfigError(
                f"model.char_filters: width {pair[0]} is wider than model.max_chars={max_chars}"
            )
