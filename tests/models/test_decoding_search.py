"""Greedy and beam search on a toy model whose best translation is known by brute force."""

from __future__ import annotations

import itertools

import pytest
import torch

from textdecade.data.parallel import BOS_ID, EOS_ID, pad
from textdecade.models.decoding import (
    beam_search,
    greedy_decode,
    length_penalty,
    reorder_tensors,
    score_sequences,
)

V = 10
WORDS = (7, 8, 9)


def _table(probs: dict[int, dict[int, float]]) -> torch.Tensor:
    """Next-token log-probs (V, V) from {previous: {next: p}}; the rest share 1e-6."""
    t = torch.full((V, V), 1e-6)
    for prev, row in probs.items():
        for nxt, p in row.items():
            t[prev, nxt] = p
    return (t / t.sum(1, keepdim=True)).log()


class MarkovModel:
    """An encoder-decoder whose next token depends on the previous token and on the source.

    Source starting with 7: the "trap": greedy takes 7 (p=.55) and then wanders (.3 each),
    while the best sentence is "8 EOS" (.45 * .95). Source starting with 8: a long sentence
    "9 9 9 EOS" is likely, short ones are not.
    """

    def __init__(self):
        trap = _table(
            {
                BOS_ID: {7: 0.55, 8: 0.45},
                7: {7: 0.3, 8: 0.3, 9: 0.1, EOS_ID: 0.3},
                8: {EOS_ID: 0.95, 9: 0.05},
                9: {EOS_ID: 0.6, 9: 0.4},
            }
        )
        long = _table(
            {
                BOS_ID: {9: 0.6, 7: 0.4},
                9: {9: 0.7, EOS_ID: 0.3},
                7: {EOS_ID: 0.5, 8: 0.5},
                8: {EOS_ID: 1.0},
            }
        )
        self.tables = torch.stack([trap, long])  # (2, V, V)

    def _which(self, src):
        return (src[:, 0] == 8).long()  # (B,)

    def encode(self, src, src_mask):
        return {"which": self._which(src)}

    def decode_step(self, state, tokens):
        return self.tables[state["which"], tokens[:, -1]], state

    def reorder_state(self, state, index):
        return reorder_tensors(state, index)

    def logits(self, src, src_mask, tgt_in):
        return self.tables[self._which(src)[:, None], tgt_in]  # (B, T, V)


def brute_force(model, first: int, alpha: float, max_words: int = 7):
    """The best (score, words) over all sentences of up to ``max_words`` words + EOS."""
    cands = [list(w) for n in range(max_words + 1) for w in itertools.product(WORDS, repeat=n)]
    src = torch.tensor([[first, EOS_ID]]).expand(len(cands), 2)
    scores = score_sequences(model, src, torch.ones_like(src), cands, alpha)
    best = int(scores.argmax())
    return float(scores[best]), cands[best]


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0])
@pytest.mark.parametrize("first", [7, 8])
def test_beam_finds_the_brute_force_optimum_and_never_loses_to_greedy(first, alpha):
    model = MarkovModel()
    src = torch.tensor([[first, EOS_ID]])
    mask = torch.ones_like(src)
    best_score, best_words = brute_force(model, first, alpha)
    hyps, scores = beam_search(model, src, mask, max_new=8, beam=4, alpha=alpha)
    assert hyps[0] == best_words
    assert scores[0].item() == pytest.approx(best_score, abs=1e-5)
    greedy, _ = greedy_decode(model, src, mask, max_new=8)
    greedy_score = score_sequences(model, src, mask, greedy, alpha)[0].item()
    assert scores[0].item() >= greedy_score - 1e-6


def test_the_trap_beats_greedy_and_alpha_favours_length():
    model = MarkovModel()
    src = torch.tensor([[7, EOS_ID]])
    mask = torch.ones_like(src)
    greedy, logp = greedy_decode(model, src, mask, max_new=8)
    assert greedy[0][0] == 7  # greedy falls into the trap
    beam, _ = beam_search(model, src, mask, max_new=8, beam=4, alpha=0.0)
    assert beam[0] == [8]
    # Reported greedy log-probability is the teacher-forced one.
    assert logp[0].item() == pytest.approx(score_sequences(model, src, mask, greedy)[0].item())
    # The length penalty divides a negative log-likelihood by a growing lp: a larger alpha
    # must never pick a shorter sentence than a smaller one, and here picks a longer one.
    src8 = torch.tensor([[8, EOS_ID]])
    lengths = [
        len(beam_search(model, src8, torch.ones_like(src8), 8, beam=4, alpha=a)[0][0])
        for a in (0.0, 1.0, 3.0)
    ]
    assert lengths == sorted(lengths) and lengths[-1] > lengths[0]


def test_batch_decoding_equals_one_by_one():
    model = MarkovModel()
    firsts = [7, 8, 8, 7, 8]
    src = pad([[f, 9, 9, EOS_ID][: 2 + i % 3] for i, f in enumerate(firsts)])
    mask = (src != 0).long()
    together, scores = beam_search(model, src, mask, 8, beam=3, alpha=0.6)
    greedy_together, _ = greedy_decode(model, src, mask, 8)
    for i in range(len(firsts)):
        one, one_score = beam_search(model, src[i : i + 1], mask[i : i + 1], 8, beam=3, alpha=0.6)
        assert one[0] == together[i] and one_score[0].item() == pytest.approx(scores[i].item())
        assert greedy_decode(model, src[i : i + 1], mask[i : i + 1], 8)[0][0] == greedy_together[i]


def test_max_new_bounds_the_output_and_length_penalty_formula():
    model = MarkovModel()
    src = torch.tensor([[8, EOS_ID]])
    hyps, _ = beam_search(model, src, torch.ones_like(src), max_new=2, beam=2, alpha=0.0)
    assert len(hyps[0]) <= 2
    assert length_penalty(7, 0.6) == pytest.approx(((5 + 7) / 6) ** 0.6)
    assert length_penalty(3, 0.0) == 1.0
