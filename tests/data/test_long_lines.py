"""A corpus of very long lines is read in bounded pieces: same words, bounded memory."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from textdecade.data import corpus as C
from textdecade.data.corpus import Corpus


@pytest.mark.parametrize("limit", [7, 16, 64])
def test_pieces_of_a_long_line_keep_every_word_and_every_character(limit):
    text = "naïve café über 東京 façade x " * 20 + "unbroken" * 9 + " end"
    raw = (text + "\nshort line\n").encode("utf-8")
    pieces = list(C._bounded_lines(io.BytesIO(raw), limit))
    assert all(len(p) <= limit for p in pieces)
    for p in pieces:
        p.decode("utf-8")  # never cut inside a UTF-8 sequence
    assert b"".join(pieces) == raw  # nothing lost, nothing doubled


def test_a_long_text_from_any_source_comes_in_pieces_cut_at_spaces():
    words = [f"w{i}" for i in range(1000)]
    pieces = list(C._in_pieces([" ".join(words), "small"], limit=50))
    assert all(len(p) <= 50 for p in pieces) and pieces[-1] == "small"
    assert " ".join(pieces[:-1]).split() == words


def test_a_one_line_file_and_jsonl_give_the_same_words_in_pieces(tmp_path, corpus_lines):
    words = " ".join(corpus_lines("gensim_lee.txt")).split()
    text = " ".join(words * 8)  # ~1.6 MB: longer than one piece
    assert len(text.encode()) > C.MAX_TEXT_BYTES
    (tmp_path / "one.txt").write_text(text + "\n", encoding="utf-8")
    (tmp_path / "one.jsonl").write_text(json.dumps({"text": text}) + "\n", encoding="utf-8")
    for name in ("one.txt", "one.jsonl"):
        texts = list(Corpus(tmp_path / name))
        assert len(texts) >= 2 and all(len(t) <= C.MAX_TEXT_BYTES for t in texts)
        assert " ".join(texts).split() == text.split()


PEAK = textwrap.dedent(
    """
    import sys
    from textdecade.data.corpus import Corpus
    from textdecade.tokenizer import Tokenizer
    Tokenizer.train(Corpus(sys.argv[1]), vocab_size=500)
    with open("/proc/self/status") as f:
        print(next(int(ln.split()[1]) for ln in f if ln.startswith("VmHWM:")) // 1024)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_training_a_tokenizer_on_a_12_mb_line_stays_within_bounded_memory(tmp_path, corpus_lines):
    words = " ".join(corpus_lines("gensim_lee.txt")).split()
    path = tmp_path / "one_line.txt"
    with open(path, "w", encoding="utf-8") as f:
        while f.tell() < 12_000_000:
            f.write(" ".join(words) + " ")
        f.write("\n")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", PEAK, str(path)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    # Measured: 73 MB peak in 64 KiB pieces, 276 MB in 1 MiB ones, 1,030 MB as one text.
    assert int(done.stdout.strip()) < 300


def test_encode_batches_are_bounded_by_characters_as_well_as_by_count():
    from textdecade.data.shards import _chunks

    texts = ["x" * 100] * 10 + ["y" * 1000] + ["z"] * 7
    chunks = list(_chunks(texts, size=5, chars=350))
    assert [t for c in chunks for t in c] == texts  # in order, nothing lost
    assert all(len(c) <= 5 for c in chunks)
    assert all(sum(map(len, c)) <= 350 or len(c) == 1 for c in chunks)  # a long text alone
