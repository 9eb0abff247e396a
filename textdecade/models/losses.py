"""The output layer and cross-entropy in one pass, a chunk of rows at a time (GPT's loss).

On CPU, the plain ``F.cross_entropy(h @ W.T, labels)`` makes several (N, V) tensors per
step, each page-faulted in fresh, and extra passes over them; here the logits and their
gradient exist one chunk at a time (see ``benchmarks/RESULTS.md``, GPT throughput).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F


class _LinearCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of ``h @ weight.T`` whose gradients are formed chunk by chunk.

    The gradient of softmax cross-entropy with respect to the logits is ``softmax - onehot``
    (divided by the number of counted labels), so each chunk's gradients are written as soon
    as its log-probabilities exist: no (N, V) logits, log-probabilities or gradient tensors
    are ever held whole, and autograd's zero-filled NLL gradient and log-softmax backward
    pass disappear. The plain path allocates four (N, V) tensors per step (64 MiB each at
    N = 2048, V = 8192), and a fresh allocation that large is page-faulted in by the kernel
    (measured: the (2048, 256) @ (256, 8192) product ran ~25% slower into a fresh tensor than
    into a reused one; a (512, V) chunk does not pay this). The gradients are computed in the
    forward pass (when grad mode is on), so the backward pass only scales them by the
    incoming scalar; double backward is not supported.
    """

    @staticmethod
    def forward(ctx, h, weight, labels, ignore_index: int, chunk_rows: int, grads: bool):
        counted = labels != ignore_index  # (N,)
        count = counted.sum()
        scale = counted.to(h.dtype) / count  # (N,) each counted row's weight in the mean
        targets = labels.masked_fill(~counted, 0)[:, None]  # (N, 1) in range everywhere
        want_h, want_w = grads and ctx.needs_input_grad[0], grads and ctx.needs_input_grad[1]
        grad_h = torch.empty_like(h) if want_h else None
        grad_w = torch.zeros_like(weight) if want_w else None
        total = h.new_zeros(())
        for start in range(0, h.shape[0], chunk_rows):
            rows = slice(start, start + chunk_rows)
            logits = h[rows] @ weight.t()  # (C, D) @ (D, V) -> (C, V)
            logp = torch.log_softmax(logits, dim=-1)
            del logits
            total -= (logp.gather(1, targets[rows]).squeeze(1) * scale[rows]).sum()
            if want_h or want_w:
                grad = logp.exp_()  # (C, V) softmax, in place of the log-probabilities
                grad.scatter_add_(1, targets[rows], grad.new_full(targets[rows].shape, -1.0))
                grad.mul_(scale[rows, None])  # ignored rows become 0
                if want_h:
                    torch.mm(grad, weight, out=grad_h[rows])  # (C, V) @ (V, D) -> (C, D)
                if want_w:
                    grad_w.addmm_(grad.t(), h[rows])  # (V, C) @ (C, D) -> (V, D)
        ctx.save_for_backward(grad_h, grad_w)
        return total

    @staticmethod
    def backward(ctx, grad_loss):
        grad_h, grad_w = ctx.saved_tensors
        return (
            None if grad_h is None else grad_h * grad_loss,
            None if grad_w is None else grad_w * grad_loss,
            None,
            None,
            None,
            None,
        )


def linear_cross_entropy(
    h: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    ignore_index: int = -100,
    chunk_rows: int = 512,
) -> torch.Tensor:
    """``F.cross_entropy(h @ weight.T, labels, ignore_index=...)`` without all the logits.

    Equal to the plain loss (and its gradients) up to float rounding. On CPU it is faster
    and lighter (``benchmarks/bench_lm.py``: GPT training 5-11% less CPU time per token,
    peak memory 65-100 MiB lower): the (N, V) logits and their gradient exist one chunk at
    a time; ``torch.compile`` traces it. On other devices and under autocast the plain
    ``F.linear`` + ``F.cross_entropy`` path runs exactly as before (the chunked path is not
    measured on GPUs, so their kernels and bf16 autocast keep their existing path).

    Args:
        h: final hidden states (N, D).  weight: the output matrix (V, D), no bias.
        labels: (N,) target ids; ``ignore_index`` rows count neither in the sum nor the mean.
        chunk_rows: rows of logits formed at once.

    Returns:
        The mean loss over counted rows (a scalar; NaN when no row counts, as torch).
    """
    if h.device.type != "cpu" or torch.is_autocast_enabled(h.device.type):
        return F.cross_entropy(F.linear(h, weight), labels, ignore_index=ignore_index)
    grads = torch.is_grad_enabled()  # inside forward() it is always off
    return _LinearCrossEntropy.apply(h, weight, labels, ignore_index, chunk_rows, grads)


def lm_metrics(batches: list[dict[str, float]], meta: dict[str, Any]) -> dict[str, float]:
    """A language model's ``val_loss`` (nats per token), ``val_ppl`` and, where ``meta``
    holds the validation text's byte and token counts, ``val_bpb`` from batch sums
    (``{"nats": summed loss, "tokens": count}``).

    Bits per byte = loss / ln 2 * (tokens / bytes) of the validation text, which does not
    depend on the tokenizer (Gao et al. 2020, The Pile).
    """
    total = sum(b["nats"] for b in batches)
    count = sum(b["tokens"] for b in batches)
    val_loss = total / max(count, 1)
    out = {"val_loss": val_loss, "val_ppl": math.exp(min(val_loss, 50.0))}
    n_bytes, n_tokens = meta.get("n_valid_bytes"), meta.get("n_valid_tokens")
    if n_bytes and n_tokens:
        out["val_bpb"] = val_loss / math.log(2) * n_tokens / n_bytes
    return out
