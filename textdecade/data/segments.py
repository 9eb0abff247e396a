"""Consecutive segments of parallel token streams: the data layout of recurrent LMs.

Transformer-XL (Dai et al. 2019), like the LSTM language models before it, reads the token
stream as B parallel streams, each a contiguous 1/B of the text, and steps through them a
segment at a time: row b of batch k+1 continues row b of batch k, so a memory of the
previous segment carries over. Nothing is random: a batcher's state is its place in the
pass (``position``) and the pass number (``epoch``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from textdecade.data.batcher import Batcher
from textdecade.errors import CorpusError


def _rows(tokens: Sequence[int], starts: Sequence[int], length: int) -> torch.Tensor:
    """``tokens[s : s + length]`` for each start: (B, length) int64 (a memmap is read only there)."""
    rows = [np.asarray(tokens[int(s) : int(s) + length], dtype=np.int64) for s in starts]
    return torch.from_numpy(np.stack(rows))


class SegmentBatcher(Batcher):
    """B parallel streams of the training tokens, one segment of each per batch.

    Stream b is ``tokens[b*N : (b+1)*N]`` with N = len(tokens) // B; batch k of a pass holds
    positions ``k*T .. k*T+T-1`` of every stream as inputs and the next tokens as labels.
    A pass is ``(N - 1) // T`` batches (the streams' short tails are left out, so every
    batch is (B, T)); then the streams start again, and ``new_stream`` says so, for the
    model to drop a memory that no longer precedes the text.

    Args:
        tokens: 1-D token ids (documents separated by eos).  batch_size: B.  segment_len: T.

    Yields:
        ``{"input_ids": (B, T), "labels": (B, T), "new_stream": (B,) bool}``.
    """

    def __init__(self, tokens: Sequence[int], batch_size: int, segment_len: int):
        self.stream_len = len(tokens) // batch_size
        if self.stream_len < segment_len + 1:
            raise CorpusError(
                f"the training data holds {len(tokens)} tokens, fewer than {batch_size} "
                f"streams of one segment ({segment_len} + 1 tokens); use more text, a smaller "
                "train.batch_size or a smaller model.segment_len"
            )
        self.tokens, self.batch_size, self.segment_len = tokens, batch_size, segment_len
        self.batches_per_epoch = (self.stream_len - 1) // segment_len
        self.units_per_batch = batch_size * segment_len
        self.position, self.epoch_index = 0, 0

    @property
    def epoch(self) -> float:
        return self.epoch_index + self.position / self.batches_per_epoch

    def __next__(self) -> dict[str, torch.Tensor]:
        offset = self.position * self.segment_len
        starts = [b * self.stream_len + offset for b in range(self.batch_size)]
        x = _rows(self.tokens, starts, self.segment_len + 1)  # (B, T+1)
        new = torch.full((self.batch_size,), self.position == 0, dtype=torch.bool)
        self.position += 1
        if self.position == self.batches_per_epoch:
            self.position, self.epoch_index = 0, self.epoch_index + 1
        return {"input_ids": x[:, :-1], "labels": x[:, 1:], "new_stream": new}

    def state_dict(self) -> dict[str, Any]:
        return {"position": self.position, "epoch": self.epoch_index}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.position, self.epoch_index = int(state["position"]), int(state["epoch"])


def segment_eval_batches(
    tokens: Sequence[int], batch_size: int, segment_len: int, max_batches: int
) -> Iterator[dict[str, torch.Tensor]]:
    """Validation segments: ``tokens`` as up to ``batch_size`` parallel streams, in order.

    Fewer streams when the text is short (each holds at least one segment when it can), and
    the last segment of the streams may be shorter, so all but fewer than B tokens count.
    At most ``max_batches`` segments per stream.
    """
    n = len(tokens)
    if n < 2:
        return
    streams = max(1, min(batch_size, (n - 1) // (segment_len + 1)))
    stream_len = n // streams
    starts = [b * stream_len for b in range(streams)]
    for k, offset in enumerate(range(0, stream_len - 1, segment_len)):
        if k >= max_batches:
            return
        length = min(segment_len, stream_len - 1 - offset)
        x = _rows(tokens, [s + offset for s in starts], length + 1)
        yield {"input_ids": x[:, :-1], "labels": x[:, 1:]}
