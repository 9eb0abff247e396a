"""Decoding for the encoder-decoders: greedy, beam search with a length penalty, scoring.

Both seq2seq (Bahdanau et al. 2014) and the Transformer (Vaswani et al. 2017) implement
the capability :class:`~textdecade.models.base.Translates`; everything here works on a batch of sources
at once. Beam search follows Wu et al. 2016 (GNMT, section 7): hypotheses are ranked by

    score(Y) = log P(Y | X) / lp(Y),    lp(Y) = ((5 + |Y|) / 6) ** alpha

where |Y| counts the generated tokens including EOS; ``alpha = 0`` is the plain
log-likelihood, and Vaswani et al. decode with beam 4 and alpha 0.6.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from textdecade.data.parallel import BOS_ID, EOS_ID, PAD_ID, pad

State = dict[str, Any]


def length_penalty(length: int | torch.Tensor, alpha: float) -> float | torch.Tensor:
    """GNMT's lp = ((5 + length) / 6) ** alpha."""
    return ((5.0 + length) / 6.0) ** alpha


def reorder_tensors(state: State, index: torch.Tensor) -> State:
    """Index dim 0 of every tensor in ``state`` (the default ``reorder_state``)."""
    return {k: v.index_select(0, index) if torch.is_tensor(v) else v for k, v in state.items()}


@torch.no_grad()
def greedy_decode(
    model: Any, src: torch.Tensor, src_mask: torch.Tensor, max_new: int
) -> tuple[list[list[int]], torch.Tensor]:
    """Pick the most likely token at every step.

    Args:
        model: a :class:`~textdecade.models.base.Translates` model.
        src, src_mask: (B, S) source ids (ending in EOS) and 1/0 mask.
        max_new: the most tokens to generate (EOS included).

    Returns:
        ``(hypotheses, log_probs)``: ids without BOS/EOS, and each one's total log P(Y|X)
        (EOS included when it was reached), shape (B,).
    """
    b = src.shape[0]
    state = model.encode(src, src_mask)
    tokens = torch.full((b, 1), BOS_ID, dtype=torch.long, device=src.device)
    finished = torch.zeros(b, dtype=torch.bool, device=src.device)
    total = torch.zeros(b, device=src.device)
    out = []
    for _ in range(max_new):
        logp, state = model.decode_step(state, tokens)
        nxt = logp.argmax(-1)
        total += torch.where(finished, 0.0, logp.gather(1, nxt[:, None]).squeeze(1))
        nxt = nxt.masked_fill(finished, PAD_ID)
        out.append(nxt)
        finished |= nxt == EOS_ID
        tokens = nxt[:, None]
        if finished.all():
            break
    rows = torch.stack(out, 1).tolist() if out else [[] for _ in range(b)]
    return [_strip(r) for r in rows], total


def _strip(ids: Sequence[int]) -> list[int]:
    """Ids up to (not including) the first EOS."""
    ids = list(ids)
    return ids[: ids.index(EOS_ID)] if EOS_ID in ids else [i for i in ids if i != PAD_ID]


@torch.no_grad()
def beam_search(
    model: Any,
    src: torch.Tensor,
    src_mask: torch.Tensor,
    max_new: int,
    beam: int = 4,
    alpha: float = 0.6,
) -> tuple[list[list[int]], torch.Tensor]:
    """Batched beam search with GNMT's length penalty.

    Each sentence keeps ``beam`` live hypotheses; a hypothesis that emits EOS is set aside
    with its normalized score, and a sentence is done once ``beam`` hypotheses have ended
    (live ones still count at ``max_new``). The greedy path is scored too and wins when it
    is better: beam search with a finite beam can lose the greedy path, and a user should
    never get a worse translation by asking for a wider search.

    Args:
        model: a :class:`~textdecade.models.base.Translates` model.
        src, src_mask: (B, S).
        max_new: the most tokens to generate (EOS included).
        beam: K, live hypotheses per sentence.
        alpha: the length-penalty exponent.

    Returns:
        ``(hypotheses, scores)``: the best ids per sentence (no BOS/EOS) and their
        normalized scores (B,).
    """
    b, device = src.shape[0], src.device
    reorder = model.reorder_state
    state = model.encode(src, src_mask)
    state = reorder(state, torch.arange(b, device=device).repeat_interleave(beam))
    scores = torch.full((b, beam), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: keep only the first alive
    history = torch.full((b * beam, 1), BOS_ID, dtype=torch.long, device=device)
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(b)]
    done = [False] * b
    for step in range(max_new):
        logp, state = model.decode_step(state, history[:, -1:])
        v = logp.shape[-1]
        cand = (scores[:, :, None] + logp.view(b, beam, v)).view(b, beam * v)  # (B, K*V)
        top_scores, top_ids = cand.topk(2 * beam, dim=1)  # EOS may take up to K of them
        top_scores, top_ids = top_scores.tolist(), top_ids.tolist()
        lp = length_penalty(step + 1, alpha)
        new_rows, new_tokens, new_scores = [], [], []
        for i in range(b):
            keep: list[tuple[int, int, float]] = []
            for s, flat in zip(top_scores[i], top_ids[i]):
                if len(keep) == beam or s == float("-inf"):
                    break
                row, token = i * beam + flat // v, flat % v
                if done[i]:
                    keep.append((row, PAD_ID, float("-inf")))
                elif token == EOS_ID:
                    if len(finished[i]) < beam:
                        finished[i].append((s / lp, history[row, 1:].tolist()))
                else:
                    keep.append((row, token, s))
            while len(keep) < beam:  # pad dead slots so shapes stay (B*K)
                keep.append((i * beam, PAD_ID, float("-inf")))
            if len(finished[i]) >= beam:
                done[i] = True
            for row, token, s in keep:
                new_rows.append(row)
                new_tokens.append(token)
                new_scores.append(s)
        index = torch.tensor(new_rows, device=device)
        state = reorder(state, index)
        history = torch.cat(
            [history.index_select(0, index), torch.tensor(new_tokens, device=device)[:, None]], 1
        )
        scores = torch.tensor(new_scores, device=device).view(b, beam)
        if all(done):
            break
    best: list[list[int]] = []
    best_scores = []
    greedy, greedy_logp = greedy_decode(model, src, src_mask, max_new)
    for i in range(b):
        options = list(finished[i])
        if not done[i]:  # out of steps: live hypotheses compete with their own length
            n = history.shape[1] - 1
            for k in range(beam):
                s = float(scores[i, k])
                if s > float("-inf"):
                    options.append(
                        (s / length_penalty(n, alpha), history[i * beam + k, 1:].tolist())
                    )
        g_len = len(greedy[i]) + (1 if len(greedy[i]) < max_new else 0)
        options.append((float(greedy_logp[i]) / length_penalty(g_len, alpha), greedy[i]))
        score, ids = max(options, key=lambda o: o[0])
        best.append(_strip(ids))
        best_scores.append(score)
    return best, torch.tensor(best_scores)


@torch.no_grad()
def score_sequences(
    model: Any,
    src: torch.Tensor,
    src_mask: torch.Tensor,
    hypotheses: Sequence[Sequence[int]],
    alpha: float = 0.0,
) -> torch.Tensor:
    """Teacher-forced log P(Y + EOS | X) / lp(|Y| + 1) of given hypotheses, (B,)."""
    tgt_in = pad([[BOS_ID, *h] for h in hypotheses]).to(src.device)
    tgt_out = pad([[*h, EOS_ID] for h in hypotheses]).to(src.device)
    logp = F.log_softmax(model.logits(src, src_mask, tgt_in).float(), dim=-1)
    tok = logp.gather(2, tgt_out[:, :, None]).squeeze(2) * (tgt_out != PAD_ID)
    lengths = (tgt_out != PAD_ID).sum(1)
    return tok.sum(1) / length_penalty(lengths.float(), alpha)


def encode_sources(tokenizer: Any, texts: Sequence[str], max_len: int) -> list[list[int]]:
    """Source ids + EOS, cut to ``max_len`` with a warning that counts the cut sentences."""
    ids = tokenizer.encode_batch(list(texts))
    cut = sum(len(x) > max_len - 1 for x in ids)
    if cut:
        warnings.warn(
            f"{cut} source sentences longer than {max_len - 1} tokens were truncated", stacklevel=2
        )
    return [[*x[: max_len - 1], EOS_ID] for x in ids]


@torch.no_grad()
def translate(
    model: Any,
    tokenizer: Any,
    texts: str | Sequence[str],
    beam: int = 4,
    length_penalty: float = 0.6,
    max_len: int | None = None,
    batch_size: int = 64,
) -> str | list[str]:
    """Translate texts with a trained seq2seq or Transformer model.

    Args:
        model: the family model (its ``config.max_len`` bounds both sides).
        tokenizer: the run's tokenizer.
        texts: one string or a list.
        beam: beam width; 1 decodes greedily.
        length_penalty: GNMT alpha for beam search.
        max_len: the most target tokens (default: ``min(model max_len - 1, 2 * S + 10)``).
        batch_size: sentences decoded together (sorted by length to pad little).

    Returns:
        The translation(s), detokenized; a str for a str input.
    """
    single = isinstance(texts, str)
    items = [texts] if single else list(texts)
    limit = model.config.max_len
    srcs = encode_sources(tokenizer, items, limit)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out: list[str] = [""] * len(items)
    order = sorted(range(len(items)), key=lambda i: len(srcs[i]))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        src = pad([srcs[i] for i in idx]).to(device)
        mask = (src != PAD_ID).long()
        max_new = min(limit - 1, 2 * src.shape[1] + 10, max_len or limit)
        if beam > 1:
            hyps, _ = beam_search(model, src, mask, max_new, beam=beam, alpha=length_penalty)
        else:
            hyps, _ = greedy_decode(model, src, mask, max_new)
        for i, h in zip(idx, hyps):
            out[i] = tokenizer.decode(h)
    model.train(was_training)
    return out[0] if single else out
