"""The co-occurrences of frequent words, counted in place (glove.c's "bigram table").

Part of GloVe's counting (:mod:`textdecade.data.cooccurrence`): most pairs are pairs of
two frequent words, and a dense table counts them without sorting them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class FrequentPairs:
    """Pairs of frequent words counted in place, glove.c's dense "bigram table".

    Word ids are frequency ranks (:func:`~textdecade.data.words.build_word_data`), so by
    Zipf's law pairs of two small ids are the bulk of all pairs. The table holds every
    pair ``(a, b)`` with ``(a + 1) * (b + 1) <= P``, the largest ``P`` whose region fits
    ``max_entries`` float64 cells (a hyperbola covers far more pairs than a square of the
    same size: 87% of all pairs in 32 MB on 5 MB of corpus_en, 15k words; a square
    of 128 MB holds 81%). Row ``a`` holds
    columns ``b < lengths[a]``, rows back to back, so the flat order is (row, col) order.
    Only the left-to-right orientation is added; :meth:`spill` adds the transpose (the
    region is symmetric), so each pair is added once, with no sort. (Ids in another order
    would count the same, only fewer pairs would land in the table.)

    Attributes:
        max_product: ``P`` (glove.c's ``max_product``).
        lengths: (V,) int64 columns of each row (non-increasing).
        offsets: (V + 1,) int64 start of each row in ``table``.
        table: float64 cells, or empty once spilled.
    """

    def __init__(self, vocab: int, max_entries: int):
        self.vocab = vocab
        ranks = np.arange(1, vocab + 1, dtype=np.int64)
        lo, hi = 0, vocab * vocab  # the region's size grows with P: bisect for the largest
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if np.minimum(vocab, mid // ranks).sum() <= max_entries:
                lo = mid
            else:
                hi = mid - 1
        self.max_product = lo
        self.lengths = np.minimum(vocab, lo // ranks)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        self.table = np.zeros(int(self.offsets[-1]), dtype=np.float64)

    @property
    def nbytes(self) -> int:
        return self.table.nbytes

    def spill(self, path: Path, block: int = 1 << 18) -> None:
        """Write the symmetric counts' nonzeros as a sorted run (keys, float32 values)."""
        rows = int(np.count_nonzero(self.lengths))  # lengths never grow with the row
        with open(str(path) + ".keys", "wb") as fk, open(str(path) + ".vals", "wb") as fv:
            r0 = 0
            while r0 < rows:  # a block of whole rows of about ``block`` cells at a time
                r1 = int(np.searchsorted(self.offsets, self.offsets[r0] + block, "right")) - 1
                r1 = min(max(r1, r0 + 1), rows)
                lo, hi = self.offsets[r0], self.offsets[r1]
                row = np.repeat(np.arange(r0, r1, dtype=np.int64), self.lengths[r0:r1])
                col = np.arange(lo, hi, dtype=np.int64) - self.offsets[row]
                vals = self.table[lo:hi] + self.table[self.offsets[col] + row]
                nz = np.flatnonzero(vals)
                (row[nz] * self.vocab + col[nz]).tofile(fk)
                vals[nz].astype(np.float32).tofile(fv)
                r0 = r1
        self.table = np.zeros(0)
