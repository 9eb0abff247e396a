"""ELMo: the biLM loss against two unidirectional LMs, the char CNN against a plain
reference, what each direction may see, exact resume, and contextual vectors that beat
context-free ones on the homograph suite."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import textdecade as td
import textdecade.embedding as E
from textdecade.cli import main
from textdecade.config import build_config
from textdecade.errors import ConfigError
from textdecade.eval.homograph import evaluate_homographs, mfs_difference
from textdecade.models import get_family
from textdecade.models.char_cnn import (
    BOW_CHAR,
    EOW_CHAR,
    PAD_CHAR,
    char_table,
    cut_pieces,
    piece_bytes,
)
from textdecade.models.elmo import Config, Model
from textdecade.pretrain.callbacks import Callback
from textdecade.pretrain.trainer import Trainer
from textdecade.tokenizer import Tokenizer

pytestmark = pytest.mark.data

SMALL = dict(
    d_model=16,
    hidden_size=24,
    n_layers=2,
    max_len=24,
    char_filters=((1, 8), (2, 8), (3, 16)),
    n_highway=2,
    dropout=0.0,
)


@pytest.fixture(scope="module")
def texts(corpus_lines):
    return corpus_lines("gensim_lee.txt")


@pytest.fixture(scope="module")
def tok(texts):
    return Tokenizer.train(texts, vocab_size=600)


def _model(tok, **overrides):
    torch.manual_seed(0)
    meta = {"vocab_size": tok.vocab_size, "piece_bytes": piece_bytes(tok), "eos_id": tok.eos_id}
    return Model(Config(**{**SMALL, **overrides}), meta).eval()


def _rows(tok, texts, n, length):
    ids = [i for t in texts for i in tok.encode(t)]
    return torch.tensor(ids[: n * length]).view(n, length)


def _lm_nll(model, lstms, seq):
    """A plain unidirectional LM: ``lstms`` read ``seq`` left to right; mean NLL of each
    next token under the shared softmax."""
    top = _stack(lstms, model.token_encoder(seq))  # (B, T + 1, D)
    return F.cross_entropy(model.softmax(top[:, :-1].flatten(0, 1)), seq[:, 1:].flatten())


def _stack(lstms, x):
    h = x
    for k, lstm in enumerate(lstms):
        out = lstm(h)[0]
        h = out + h if k > 0 else out  # the residual from the second layer on
    return h


def test_bilm_loss_is_a_forward_lm_plus_a_backward_lm_on_the_reversed_text(one_thread, tok, texts):
    model = _model(tok)
    window = _rows(tok, texts, 4, 25)  # (B, T + 1) real text
    batch = {"input_ids": window[:, :-1], "labels": window[:, 1:]}
    loss = model.loss(batch)
    forward = _lm_nll(model, model.forward_lstms, window)
    backward = _lm_nll(model, model.backward_lstms, window.flip(1))  # reversed, left to right
    assert loss.detach().item() == pytest.approx((forward + backward).detach().item(), abs=1e-5)
    assert abs(loss.detach().item() - 2 * np.log(tok.vocab_size)) < 1  # untrained: near uniform
    # the same gradients as well (the loss is the chunked output layer)
    params = [p for p in model.parameters() if p.requires_grad]  # the mix is frozen
    grads = [torch.autograd.grad(x, params) for x in (loss, forward + backward)]
    for fused, plain in zip(*grads):
        torch.testing.assert_close(fused, plain, atol=1e-6, rtol=1e-4)


def test_char_table_round_trips_every_piece_and_the_cnn_matches_a_plain_reference(one_thread, tok):
    model = _model(tok, max_chars=30)
    pieces = piece_bytes(tok)
    table = char_table(pieces, tok.vocab_size, 30)
    # Every row is [begin, bytes + 1..., end, padding]: reading the bytes back and joining
    # them over a real sentence's pieces gives the sentence's own UTF-8 bytes.
    text = tok.normalize("The bank's café rose 3.5% — naïve, said Müller.")
    ids = tok.encode(text)
    got = b""
    for i in ids:
        row = table[i].tolist()
        assert row[0] == BOW_CHAR
        end = row.index(EOW_CHAR)
        assert all(c == PAD_CHAR for c in row[end + 1 :])
        got += bytes(c - 1 for c in row[1:end])
    assert got == (" " + text).encode("utf-8")  # the tokenizer reads a text after a space
    assert len({tuple(r) for r in table[7:].tolist()}) == tok.vocab_size - 7  # all distinct
    # The module (columns cropped) against a per-piece computation on the full-width row.
    cnn = model.token_encoder
    chosen = torch.tensor([7, 42, int(max(range(7, tok.vocab_size), key=lambda i: len(pieces[i])))])
    with torch.no_grad():
        out = cnn(chosen[None])[0]
        for k, i in enumerate(chosen.tolist()):
            e = cnn.char_embedding.weight[table[i]]  # (C, E) with all 30 columns
            feats = []
            for conv in cnn.convs:
                w = conv.weight.shape[-1]
                windows = [
                    (conv.weight * e[s : s + w].T).sum((1, 2)) + conv.bias
                    for s in range(30 - w + 1)
                ]
                feats.append(torch.stack(windows).relu().max(0).values)
            x = torch.cat(feats)
            for layer in cnn.highway.layers:
                n = x.shape[0]
                g = torch.sigmoid(layer.weight[n:] @ x + layer.bias[n:])
                x = g * torch.relu(layer.weight[:n] @ x + layer.bias[:n]) + (1 - g) * x
            ref = cnn.projection.weight @ x + cnn.projection.bias
            torch.testing.assert_close(out[k], ref, atol=1e-5, rtol=1e-5)
    # a piece longer than the table keeps its first max_chars - 2 bytes (bilm-tf's cut)
    narrow = char_table(pieces, tok.vocab_size, 5)
    long = [i for i, p in enumerate(pieces) if p is not None and len(p) // 2 > 3]
    assert long and cut_pieces(pieces, 5)
    assert len(cut_pieces(pieces, 5)) == len(long)
    for i in long[:20]:
        head = [b + 1 for b in bytes.fromhex(pieces[i])[:3]]
        assert narrow[i].tolist() == [BOW_CHAR, *head, EOW_CHAR]
    with pytest.raises(ConfigError, match="max_chars=2 holds no byte"):
        Config(max_chars=2)


@pytest.mark.parametrize("encoder", ["char_cnn", "embedding"])
def test_forward_never_sees_the_right_and_backward_never_the_left(one_thread, tok, texts, encoder):
    model = _model(tok, token_encoder=encoder)
    ids = _rows(tok, texts, 1, 20)
    p = 9
    changed = ids.clone()
    changed[0, p] = 100 if int(ids[0, p]) != 100 else 101
    with torch.no_grad():
        before, after = model.hidden_states(ids), model.hidden_states(changed)
    d = SMALL["d_model"]
    assert len(before) == SMALL["n_layers"] + 1 and before[0].shape == (1, 20, 2 * d)
    torch.testing.assert_close(before[0][..., :d], before[0][..., d:])  # layer 0 is [x; x]
    for k in range(1, len(before)):
        fwd_b, fwd_a = before[k][0, :, :d], after[k][0, :, :d]
        bwd_b, bwd_a = before[k][0, :, d:], after[k][0, :, d:]
        assert torch.equal(fwd_b[:p], fwd_a[:p])  # forward: the left only
        assert torch.equal(bwd_b[p + 1 :], bwd_a[p + 1 :])  # backward: the right only
        assert not torch.allclose(fwd_b[p:], fwd_a[p:]) and not torch.allclose(
            bwd_b[: p + 1], bwd_a[: p + 1]
        )
    # right padding changes no state of a text (each row is reversed within its length)
    short = ids[:, :13]
    padded = torch.cat([short, torch.zeros(1, 7, dtype=torch.long)], 1)
    batch = torch.cat([padded, ids])
    mask = torch.cat([torch.tensor([[1] * 13 + [0] * 7]), torch.ones(1, 20, dtype=torch.long)])
    with torch.no_grad():
        alone = model.hidden_states(short)
        together = model.hidden_states(batch, mask)
    for a, b in zip(alone, together):
        torch.testing.assert_close(a[0], b[0, :13], atol=1e-6, rtol=1e-5)


# ------------------------------------------------------------------- through the engine

ENGINE = [
    "train.threads=1",
    "train.batch_size=8",
    "train.warmup_steps=4",
    "tokenizer.vocab_size=500",
    "model.d_model=24",
    "model.hidden_size=48",
    "model.max_len=24",
    "model.char_filters=[[1, 16], [2, 16], [3, 32]]",
    "model.dropout=0.1",
    "model.valid_fraction=0.1",
]


def _fit(run, texts, *extra, **kwargs):
    Model_, Config_, presets = get_family("elmo")
    config = build_config("elmo", Config_, presets, "tiny", None, [*ENGINE, *extra])
    return Trainer(config, run, corpus=texts, progress=False, **kwargs).fit()


class _Crash(Callback):
    def __init__(self, at: int):
        self.at = at

    def after_step(self, model, step):
        if step == self.at:
            raise RuntimeError("simulated crash")


def test_a_killed_run_resumes_to_bitwise_identical_weights(one_thread, tmp_path, texts):
    steps = ["train.steps=12", "train.ckpt_every=5", "train.eval_every=6", "train.eval_batches=2"]
    _fit(tmp_path / "straight", texts, *steps)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _fit(tmp_path / "crashed", texts, *steps, callbacks=[_Crash(8)])
    _fit(tmp_path / "crashed", texts, *steps, resume=True)
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "crashed" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    records = [
        json.loads(x) for x in (tmp_path / "crashed" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in records] == list(range(1, 13))
    evals = [r for r in records if "val_loss" in r]
    # the joint loss is the mean of the two directions; the sum is on the training scale
    last = evals[-1]
    assert last["val_loss"] == pytest.approx((last["val_loss_fwd"] + last["val_loss_bwd"]) / 2)
    assert last["val_loss_sum"] == pytest.approx(2 * last["val_loss"])
    assert last["val_ppl"] == pytest.approx(np.exp(last["val_loss"]))
    assert last["val_bpb"] > 0 and last["val_bpb_fwd"] > 0


def test_cli_pretrains_scores_perplexity_and_refuses_to_generate(
    one_thread, capsys, tmp_path, texts
):
    corpus = tmp_path / "lee.txt"
    corpus.write_text("\n".join(texts) + "\n")
    run = tmp_path / "run"
    sets = [
        a for s in [*ENGINE, "train.eval_every=10", "train.ckpt_every=10"] for a in ("--set", s)
    ]
    code = main(["pretrain", "elmo", "--preset", "tiny", "--corpus", str(corpus), "-o", str(run),
                 "--steps", "20", "-q", *sets])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "elmo run ->" in out and "val_loss=" in out
    assert main(["eval", "perplexity", str(run), "--format", "json"]) == 0
    scored = json.loads(capsys.readouterr()[0])
    assert scored["perplexity"] == pytest.approx(np.exp(scored["loss"]), rel=1e-6)
    assert scored["perplexity"] < tok_size(run) and scored["bits_per_byte"] > 0
    assert {"val_loss_fwd", "val_loss_bwd", "val_ppl_fwd", "val_ppl_bwd"} <= scored.keys()
    code = main(["generate", str(run), "The fire"])
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "cannot generate" in lines[0], err
    assert out == ""  # refused before the prompt is echoed
    # the handle embeds sentences and words with ELMo's 2 x d_model vectors
    handle = td.load(run, device="cpu")
    assert handle.embed(["The river bank.", "A bank loan."]).shape == (2, 48)
    assert handle.embed_words("she sat on the bank", ["bank"], layers="last4").shape == (1, 48)


def test_a_too_narrow_char_table_is_one_line_or_cuts_long_pieces(capsys, tmp_path, texts):
    corpus = tmp_path / "lee.txt"
    corpus.write_text("\n".join(texts[:60]) + "\n")
    common = ["--corpus", str(corpus), "-q", "--set", "tokenizer.vocab_size=400"]
    run = tmp_path / "run2"
    code = main(["pretrain", "elmo", *common, "-o", str(run), "--set", "model.max_chars=2"])
    lines = [line for line in capsys.readouterr()[1].splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "model.max_chars=2 holds no byte" in lines[0]
    assert not run.exists()  # a refused start leaves nothing to block the corrected command
    # pieces longer than max_chars - 2 bytes are cut (bilm-tf's rule), said in one line, and
    # the run trains: a real corpus's rare long runs of one character must not stop it
    run = tmp_path / "run5"
    code = main(["pretrain", "elmo", *common, "-o", str(run), "--set", "model.max_chars=5",
                 "--steps", "2", "--set", "train.threads=1", "--set", "model.hidden_size=32",
                 "--set", "model.d_model=16", "--set", "model.max_len=16"])  # fmt: skip
    err = capsys.readouterr()[1]
    assert code == 0, err
    warned = [line for line in err.splitlines() if "longer than model.max_chars - 2" in line]
    assert len(warned) == 1 and "whole" in warned[0]
    assert (run / "model.safetensors").is_file()


def tok_size(run):
    return Tokenizer.load(run / "tokenizer.json").vocab_size


# ------------------------------------------------------------------- quality on real text

QUALITY = [
    "train.threads=1",
    "train.steps=250",
    "train.batch_size=16",
    "train.eval_every=0",
    "train.ckpt_every=100000",
    "tokenizer.vocab_size=2000",
    "model.d_model=64",
    "model.hidden_size=128",
    "model.max_len=48",
    "model.valid_fraction=0.02",
]


class _Layers:
    """A loaded ELMo run whose word vectors come from ``pick(hidden_states)``."""

    def __init__(self, handle, pick):
        self.handle, self.pick = handle, pick

    def hidden_states(self, ids, mask=None):
        return [self.pick(self.handle.model.hidden_states(ids, mask))]

    def word_states(self, sentences, layers="last", batch_size=32):
        h = self.handle
        encoded = [h.tokenizer.encode_words(list(words)) for words in sentences]
        return E.word_states_contextual(
            self, encoded, [len(w) for w in sentences], h.framing, layers="last",
            batch_size=batch_size, device=h.device,
        )  # fmt: skip

    def input_word_vectors(self, words):
        return self.handle.input_word_vectors(words)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """ELMo on the built-in sample (real English: gensim's Lee and Wikipedia texts)."""
    from textdecade.data.corpus import Corpus

    texts = list(itertools.islice(iter(Corpus()), 6000))
    run = tmp_path_factory.mktemp("elmo") / "run"
    threads = torch.get_num_threads()
    try:
        _fit(run, texts, *QUALITY)
    finally:
        torch.set_num_threads(threads)
    handle = td.load(run, device="cpu")
    handle.texts = texts
    return handle


@pytest.mark.slow
def test_contextual_vectors_separate_senses_that_context_free_ones_cannot(trained, tmp_path):
    model = trained.model
    # Pretraining never reaches the scalar mix: it stays uniform, so ELMo's default
    # vector is the mean of the L + 1 = 3 layers, which last4's sum is up to scale.
    assert not model.scalar_mix.scalars.any() and float(model.scalar_mix.gamma.detach()) == 1.0
    ids = torch.tensor([trained.tokenizer.encode("The bank raised its rates.")])
    with torch.no_grad():
        states = model.hidden_states(ids)
        torch.testing.assert_close(3 * model.scalar_mix(states), torch.stack(states).sum(0))
        layer0 = evaluate_homographs(_Layers(trained, lambda s: s[0]), probe=True)
        top = evaluate_homographs(_Layers(trained, lambda s: s[-1]))  # nearest centroid
        mix = evaluate_homographs(_Layers(trained, model.scalar_mix), probe=True)
    # Layer 0 (the char CNN's vector of each piece, the same in every sentence) can only
    # say each word's most frequent sense, as Word2Vec trained on the same text does.
    assert layer0.accuracy == layer0.mfs_accuracy == layer0.probe_accuracy == 0.5
    w2v = build_config("word2vec", *get_family("word2vec")[1:], "tiny", None,
                       ["train.threads=1", "train.steps=40", "train.eval_every=0"])  # fmt: skip
    Trainer(w2v, tmp_path / "w2v", corpus=trained.texts, progress=False).fit()
    static = evaluate_homographs(td.load(tmp_path / "w2v").vectors)
    assert static.accuracy == layer0.accuracy
    # Measured (250 steps, 64/128): top 60.2%, mix 59.3% (centroids), mix probe 63.8%,
    # each +-2.7 (95%); floors 5 points above the context-free 50%.
    for result, which in ((top, "accuracy"), (mix, "accuracy"), (mix, "probe_accuracy")):
        assert getattr(result, which) > layer0.accuracy + 0.05, (which, result.summary())
        assert result.intervals[which].low > layer0.accuracy, which
        assert mfs_difference(result, which).p_value < 0.01, which
