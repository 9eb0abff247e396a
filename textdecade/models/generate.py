"""Sampling text from a causal language model: temperature, top-k, top-p, KV cache, streaming.

Works with any model that has ``logits(input_ids, cache=None)``, ``new_cache(batch)`` and
``context_size`` (a :class:`~textdecade.models.base.Generates` family: GPT's ``max_len``;
Transformer-XL's memory slides, so its context is unbounded). Decoding is one sequence at a time, the common case
for a prompt typed at a terminal.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch

from textdecade.errors import ConfigError, UserError


def filter_logits(
    logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """Set logits outside the top-k and outside the nucleus (top-p) to -inf.

    Args:
        logits: (V,) or (B, V).
        top_k: keep the k largest (None or 0: all).
        top_p: keep the smallest set of most likely tokens whose probability reaches p
            (Holtzman et al. 2019); the most likely token is always kept.
    """
    if top_k:
        k = min(top_k, logits.shape[-1])
        kth = torch.topk(logits, k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = sorted_logits.softmax(-1)
        # drop a token when the tokens ranked before it already reach top_p
        drop_sorted = probs.cumsum(-1) - probs >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> int:
    """Draw one token id from last-position logits (V,); temperature 0 or top_k 1 is greedy."""
    if temperature < 0:
        raise ConfigError(f"temperature must be >= 0, got {temperature}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ConfigError(f"top_p must be in (0, 1], got {top_p}")
    if top_k is not None and top_k < 0:
        raise ConfigError(f"top_k must be >= 0, got {top_k}")
    logits = logits.float().cpu()  # sample on CPU: the same seed gives the same text anywhere
    if temperature == 0 or top_k == 1:
        return int(logits.argmax())
    probs = filter_logits(logits / temperature, top_k, top_p).softmax(-1)
    return int(torch.multinomial(probs, 1, generator=generator))


@torch.no_grad()
def generate_ids(
    model: Any,
    prompt_ids: list[int],
    max_new_tokens: int = 100,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    eos_id: int | None = None,
    seed: int | None = None,
    use_cache: bool = True,
    logits_out: list[torch.Tensor] | None = None,
) -> Iterator[int]:
    """Yield new token ids one at a time (a generator, so callers can stream).

    Args:
        model: a causal LM (see the module docstring), in eval mode during the call.
        prompt_ids: the context; at least one id (prepend eos for "start of a document").
        max_new_tokens: the most ids to yield.
        temperature, top_k, top_p: see :func:`sample_next`.
        eos_id: stop (without yielding it) when this id is drawn; None never stops early.
        seed: seeds the sampler (None: random).
        use_cache: decode with a KV cache (O(T) per token); False recomputes the whole
            window each step (the reference the cache is tested against).
        logits_out: when given, each step's last-position logits (V,) are appended.

    A context longer than ``context_size`` keeps its last ``context_size`` tokens (uncached) or
    restarts the cache from the last half context (cached); within it both
    paths give identical tokens.
    """
    if not prompt_ids:
        raise UserError("generate needs at least one prompt token")
    max_len = model.context_size
    device = next(model.parameters()).device
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    was_training = model.training
    model.eval()
    tokens = list(prompt_ids)
    if len(tokens) > max_len:
        warnings.warn(
            f"prompt of {len(tokens)} tokens is longer than the context ({max_len}); "
            "keeping its end",
            stacklevel=2,
        )
    cache, pending = None, tokens[-max_len:]
    try:
        for _ in range(max_new_tokens):
            if use_cache:
                if cache is None:
                    cache = model.new_cache(1)
                elif cache[0].length + len(pending) > max_len:
                    # full: absolute positions forbid sliding, so restart from half a context
                    cache = model.new_cache(1)
                    pending = tokens[-max(1, max_len // 2) :]
                ids = torch.tensor([pending], device=device)
                logits = model.logits(ids, cache)[0, -1]
            else:
                ids = torch.tensor([tokens[-max_len:]], device=device)
                logits = model.logits(ids)[0, -1]
            if logits_out is not None:
                logits_out.append(logits.float().cpu())
            next_id = sample_next(logits, temperature, top_k, top_p, generator)
            if eos_id is not None and next_id == eos_id:
                break
            tokens.append(next_id)
            pending = [next_id]
            yield next_id
    finally:
        model.train(was_training)


def stream_text(
    model: Any,
    tokenizer: Any,
    prompt: str,
    max_new_tokens: int = 100,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    stop_at_eos: bool = True,
    seed: int | None = None,
    use_cache: bool = True,
) -> Iterator[str]:
    """Yield the continuation of ``prompt`` as text pieces, as soon as they are complete.

    The prompt is preceded by eos, the document separator the model saw in training, so
    an empty prompt means "the start of a document". A piece is held back while it ends
    in an incomplete UTF-8 character (byte-level BPE splits characters across tokens).
    """
    eos = getattr(tokenizer, "eos_id", None)
    prompt_ids = ([eos] if eos is not None else []) + tokenizer.encode(prompt)
    new: list[int] = []
    emitted = ""
    for token in generate_ids(
        model,
        prompt_ids,
        max_new_tokens,
        temperature,
        top_k,
        top_p,
        eos_id=eos if stop_at_eos else None,  # None: the tokenizer has no eos
        seed=seed,
        use_cache=use_cache,
    ):
        new.append(token)
        text = tokenizer.decode(new)
        if text.endswith("\ufffd"):
            continue
        if text.startswith(emitted):
            piece, emitted = text[len(emitted) :], text
            if piece:
                yield piece
    text = tokenizer.decode(new)
    if text.startswith(emitted) and len(text) > len(emitted):
        yield text[len(emitted) :]


def generate(
    model: Any,
    tokenizer: Any,
    prompt: str,
    max_new_tokens: int = 100,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    stop_at_eos: bool = True,
    seed: int | None = None,
    stream: Callable[[str], Any] | None = None,
    use_cache: bool = True,
) -> str:
    """Continue ``prompt`` and return the generated text (without the prompt).

    Args:
        model: a GPT (``textdecade.models.gpt.Model``) or any causal LM with ``logits``.
        tokenizer: the run's tokenizer.
        prompt: the text to continue ("" starts a new document).
        max_new_tokens: the most tokens to generate.
        temperature: 0 is greedy; higher is more random.
        top_k: sample among the k most likely tokens (1 is greedy).
        top_p: nucleus sampling threshold.
        stop_at_eos: stop at the end-of-document token.
        seed: for reproducible samples.
        stream: called with each text piece as it is produced (e.g. ``print``-like).
        use_cache: decode with a KV cache.
    """
    pieces = []
    for piece in stream_text(
        model,
        tokenizer,
        prompt,
        max_new_tokens,
        temperature,
        top_k,
        top_p,
        stop_at_eos,
        seed,
        use_cache,
    ):
        pieces.append(piece)
        if stream is not None:
            stream(piece)
    return "".join(pieces)
