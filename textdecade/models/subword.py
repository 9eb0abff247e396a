"""Subword backoff for static word vectors: BPE-piece vectors fitted to the word vectors.

fastText (Bojanowski et al. 2017) trains n-gram vectors alongside the words, making every
update touch a word's n-grams too. We take the cheaper road of Pinter et al. (2017,
"Mimicking Word Embeddings using Subword RNNs"), with the linear model of fastText: after
training, find BPE-piece vectors ``P`` whose mean over a word's pieces (weighted by their length in characters) best reproduces the
word's (unit-normalized) vector, by ridge regression over the whole vocabulary,

    min_P  sum_w c_w || mean_{p in pieces(w)} P_p - W_w / |W_w| ||^2 + l2 ||P||^2,

with ``c_w = log(1 + count_w)`` so that frequent, well-trained words weigh more. It costs
nothing during training (Word2Vec keeps its speed), takes seconds after it, and serves
Word2Vec and GloVe alike. An out-of-vocabulary word (a misspelling, a rare plural) gets the
weighted mean of its pieces' vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


def word_pieces(tokenizer: Any, words: Sequence[str]) -> list[list[int]]:
    """BPE piece ids of each word as it appears mid-sentence (one batched call)."""
    ids, index = tokenizer.encode_words(list(words))
    pieces: list[list[int]] = [[] for _ in words]
    for piece, w in zip(ids, index):
        pieces[w].append(piece)
    return pieces


def piece_lengths(tokenizer: Any) -> np.ndarray:
    """(n_pieces,) characters each piece spells (the byte-level space marker not counted)."""
    lengths = np.ones(tokenizer.vocab_size, dtype=np.float32)
    for i in range(tokenizer.vocab_size):
        token = tokenizer.id_to_token(i) or ""
        lengths[i] = max(1, len(token.replace("\u0120", "").replace("\u2581", "")))
    return lengths


def fit_piece_vectors(
    pieces: Sequence[Sequence[int]],
    matrix: np.ndarray,
    n_pieces: int,
    counts: Sequence[int] | None = None,
    weights: np.ndarray | None = None,
    l2: float = 0.1,
    iters: int = 60,
) -> np.ndarray:
    """Solve the ridge regression above by conjugate gradients (all dimensions at once).

    Args:
        pieces: for each of the V words, its piece ids.
        matrix: (V, D) word vectors.
        n_pieces: the tokenizer's vocabulary size.
        counts: (V,) corpus counts (weights ``log(1 + c)``); None weighs words equally.
        weights: (n_pieces,) weight of each piece in a word's mean (its length in
            characters, so "Wednesday" outweighs the "s" of "Wednesdays"); None: equal.
        l2: ridge penalty (keeps pieces no word constrains at zero).
        iters: conjugate-gradient iterations.

    Returns:
        (n_pieces, D) float32 piece vectors, scaled to the median norm of the word vectors.
    """
    mat = torch.as_tensor(np.asarray(matrix, dtype=np.float32))
    norms = mat.norm(dim=1, keepdim=True).clamp_min(1e-8)
    target = mat / norms  # (V, D)
    rows, cols, vals = [], [], []
    wt = np.ones(n_pieces, dtype=np.float32) if weights is None else weights
    for w, ps in enumerate(pieces):
        total = float(sum(wt[p] for p in ps))
        for p in ps:
            rows.append(w)
            cols.append(p)
            vals.append(float(wt[p]) / total)
    v = mat.shape[0]
    a = torch.sparse_coo_tensor(
        torch.tensor([rows, cols], dtype=torch.int64),
        torch.tensor(vals, dtype=torch.float32),
        (v, n_pieces),
        check_invariants=True,
    ).coalesce()
    at = a.t().coalesce()
    c = (
        torch.ones(v, 1)
        if counts is None
        else torch.log1p(torch.as_tensor(counts).float())[:, None]
    )

    def normal(x: torch.Tensor) -> torch.Tensor:  # (A^T C A + l2 I) x
        return torch.sparse.mm(at, c * torch.sparse.mm(a, x)) + l2 * x

    b = torch.sparse.mm(at, c * target)  # (n_pieces, D)
    x = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rs = (r * r).sum(0)  # per-column CG: each dimension is its own system, same matrix
    for _ in range(iters):
        ap = normal(p)
        alpha = rs / (p * ap).sum(0).clamp_min(1e-30)
        x += alpha * p
        r -= alpha * ap
        rs_new = (r * r).sum(0)
        if float(rs_new.max()) < 1e-10:
            break
        p = r + (rs_new / rs.clamp_min(1e-30)) * p
        rs = rs_new
    return (x * norms.median()).numpy().astype(np.float32)


class PieceBackoff:
    """A ``Vectors`` backoff: an OOV word's vector is the weighted mean of its pieces' vectors.

    Args:
        tokenizer: the run's tokenizer (``word_piece_ids``).
        pieces: (n_pieces, D) vectors from :func:`fit_piece_vectors`.
        weights: (n_pieces,) the weights the fit used (None: equal).
    """

    def __init__(self, tokenizer: Any, pieces: np.ndarray, weights: np.ndarray | None = None):
        self.tokenizer = tokenizer
        self.pieces = pieces
        self.weights = np.ones(len(pieces), np.float32) if weights is None else weights

    def __call__(self, word: str) -> np.ndarray | None:
        ids = [i for i in self.tokenizer.word_piece_ids(word) if 0 <= i < len(self.pieces)]
        if not ids:
            return None
        w = self.weights[ids]
        vec = (self.pieces[ids] * w[:, None]).sum(0) / w.sum()
        return vec if float(np.abs(vec).sum()) > 0 else None
