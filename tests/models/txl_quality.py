"""Transformer-XL against GPT at equal size, segment length and tokens (the quality test's helper).

Run as a script to measure the numbers the test's floors are set from::

    PYTHONPATH=. python tests/models/txl_quality.py 0 1
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from textdecade.models import gpt, transformer_xl
from textdecade.models.base import PreparedData

D, HEADS, LAYERS, SEG, VOCAB, BATCH, STEPS, LR = 64, 4, 2, 32, 512, 16, 300, 2e-3


def shakespeare(path):
    """Tiny Shakespeare as BPE ids: (tokenizer, train, valid), the last 10% held out."""
    from tests.models.test_gpt_tokenizer_standin import train_tokenizer

    text = path.read_text(encoding="utf-8")
    paragraphs = [p for p in text.split("\n\n") if p.strip()][:2500]
    tok = train_tokenizer(paragraphs, vocab_size=VOCAB)
    ids = []
    for row in tok.encode_batch(paragraphs):
        ids += row + [tok.eos_id]
    ids = np.array(ids, dtype=np.uint16)
    cut = int(len(ids) * 0.9)
    return tok, ids[:cut], ids[cut:]


def equal_size_models(vocab_size: int, seed: int):
    """A GPT and a Transformer-XL of at most its parameters (a narrower MLP pays for W_R)."""
    meta = {"vocab_size": vocab_size}
    torch.manual_seed(seed)
    g = gpt.Model(gpt.Config(d_model=D, n_heads=HEADS, n_layers=LAYERS, max_len=SEG), meta)
    n_gpt = sum(p.numel() for p in g.parameters())
    d_ff = 4 * D
    while True:
        cfg = transformer_xl.Config(
            d_model=D,
            n_heads=HEADS,
            n_layers=LAYERS,
            d_ff=d_ff,
            segment_len=SEG,
            mem_len=SEG,
            activation="gelu_tanh",
        )
        torch.manual_seed(seed)
        x = transformer_xl.Model(cfg, meta)
        if sum(p.numel() for p in x.parameters()) <= n_gpt:
            return g, x
        d_ff -= 1


def train(model, data: PreparedData, seed: int) -> None:
    """``STEPS`` AdamW steps on ``BATCH`` x ``SEG`` tokens each."""
    batches = model.batcher(data, BATCH, seed=seed)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    model.train()
    for _ in range(STEPS):
        loss = model(next(batches))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    model.eval()


def measure(path, seed: int) -> dict[str, float]:
    """Validation losses: GPT, and Transformer-XL with eval memory 0, SEG and 2 SEG."""
    tok, tr, va = shakespeare(path)
    meta = {"vocab_size": tok.vocab_size, "eos_id": tok.eos_id}
    data = PreparedData(meta=meta, train=tr, valid=va)
    g, x = equal_size_models(tok.vocab_size, seed)
    train(g, data, seed)
    train(x, data, seed)
    out = {"gpt": g.evaluate(data, 10**6)["val_loss"]}
    for mem in (0, SEG, 2 * SEG):
        batches = list(x.eval_batches(data, 10**6, mem_len=mem))
        out[f"txl_mem{mem}"] = x.eval_metrics(batches)["val_loss"]
    out["params_gpt"] = sum(p.numel() for p in g.parameters())
    out["params_txl"] = sum(p.numel() for p in x.parameters())
    return out


if __name__ == "__main__":
    import time

    from textdecade.data.shared import shared_path

    torch.set_num_threads(1)
    for s in sys.argv[1:] or ["0"]:
        t0 = time.perf_counter()
        r = measure(shared_path("tinyshakespeare", "input.txt"), int(s))
        print(f"seed {s}: {r} ({time.perf_counter() - t0:.0f} s)", flush=True)
