"""Parallel corpora: reading, bad input, encoding, length-bucketed resumable batches."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import data_path
from textdecade.data.parallel import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    BucketBatcher,
    PairArrays,
    ParallelCorpus,
    encode_pairs,
)
from textdecade.errors import ConfigError, CorpusError, FormatError

SRC = ["Ein Hund läuft.", "Zwei Katzen schlafen.", "", "Ein Mann liest ein Buch.", "Hallo"]
TGT = ["A dog runs.", "Two cats sleep.", "Nothing here.", "A man reads a book.", ""]


class CharTokenizer:
    """A stand-in tokenizer: one id per character (ids from 7 upward)."""

    vocab_size = 300

    def encode_batch(self, texts):
        return [[7 + (ord(c) % 290) for c in t] for t in texts]


def write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_two_files_skip_empty_sides_and_count(tmp_path):
    src, tgt = write(tmp_path / "a.de", SRC), write(tmp_path / "a.en", TGT)
    with pytest.warns(UserWarning, match="skipped 2 pairs"):
        corpus = ParallelCorpus(src, tgt)
    assert corpus.n_skipped == 2
    assert corpus.pairs()[2] == ("Ein Mann liest ein Buch.", "A man reads a book.")
    assert len(corpus) == 3
    # Iterating gives both sides, for a joint tokenizer.
    assert list(corpus)[:2] == ["Ein Hund läuft.", "A dog runs."]


def test_different_line_counts_are_refused_with_both_counts(tmp_path):
    src, tgt = write(tmp_path / "a.de", SRC), write(tmp_path / "a.en", TGT[:4])
    with pytest.raises(CorpusError, match=r"5 lines.*has 4"):
        ParallelCorpus(src, tgt)


def test_missing_file_and_tsv_errors_name_the_line(tmp_path):
    with pytest.raises(CorpusError, match="not found"):
        ParallelCorpus(tmp_path / "nope.de", tmp_path / "nope.en")
    tsv = write(tmp_path / "p.tsv", ["Hund\tdog", "Katze\tcat", "kaputt ohne tab"])
    with pytest.raises(FormatError, match=r"p\.tsv:3"):
        ParallelCorpus(tsv)
    good = write(tmp_path / "q.tsv", ["Hund\tdog", "", "Katze\tcat"])
    assert ParallelCorpus(good).pairs() == [("Hund", "dog"), ("Katze", "cat")]


def test_non_utf8_bytes_are_replaced_and_reported(tmp_path):
    (tmp_path / "a.de").write_bytes(b"gr\xfc\xdfe\nHund\n")
    write(tmp_path / "a.en", ["greetings", "dog"])
    with pytest.warns(UserWarning, match="not UTF-8"):
        corpus = ParallelCorpus(tmp_path / "a.de", tmp_path / "a.en")
    assert "\ufffd" in corpus.pairs()[0][0]


def test_hf_translation_dataset_rows():
    datasets = pytest.importorskip("datasets")
    rows = [{"translation": {"de": s, "en": t}} for s, t in zip(SRC, TGT)]
    ds = datasets.Dataset.from_list(rows)
    corpus = ParallelCorpus.from_dataset(ds, "de", "en")
    assert corpus.pairs()[0] == ("Ein Hund läuft.", "A dog runs.")
    assert corpus.n_skipped == 2
    with pytest.raises(FormatError, match="'fr'"):
        ParallelCorpus.from_dataset(ds, "fr", "en")


def test_long_sources_truncated_with_a_warning(tmp_path):
    pairs = [("x" * 50, "short"), ("ok", "y" * 3)]
    with pytest.warns(UserWarning, match="1 source sentences longer than 9 tokens"):
        arrays = encode_pairs(pairs, CharTokenizer(), max_len=10)
    assert len(arrays.src(0)) == 9 and len(arrays.tgt(0)) == 5
    arrays.save(tmp_path, "t")
    again = PairArrays.load(tmp_path, "t")
    assert np.array_equal(again.src(1), arrays.src(1))


def test_batches_bucket_by_length_and_resume_exactly():
    rng = np.random.default_rng(0)
    # Target lengths follow source lengths, as in real translation pairs.
    pairs = [("a" * int(n), "b" * int(n + rng.integers(0, 3))) for n in rng.integers(1, 40, 600)]
    arrays = encode_pairs(pairs, CharTokenizer(), max_len=64)
    batcher = BucketBatcher(arrays, 8, seed=3)
    batch = next(batcher)
    # Teacher forcing: BOS + target in, target + EOS out; the source ends in EOS.
    row_len = int(batch["src_mask"][0].sum())
    assert batch["src"][0, row_len - 1] == EOS_ID
    assert (batch["tgt_in"][:, 0] == BOS_ID).all()
    assert (
        (batch["tgt_in"][:, 1:] == batch["tgt_out"][:, :-1])
        .logical_or(batch["tgt_out"][:, :-1] == EOS_ID)
        .all()
    )
    # Bucketing pads far less than random batches would.
    pad_frac = np.mean([(next(batcher)["src"] == PAD_ID).float().mean() for _ in range(20)])
    lengths = np.diff(arrays.src_offsets) + 1
    random_pad = np.mean(
        [1 - lengths[b].mean() / lengths[b].max() for b in rng.integers(0, 600, size=(200, 8))]
    )
    assert pad_frac < 0.5 * random_pad
    # Resume from the state: the same batches follow, across an epoch boundary.
    state = batcher.state_dict()
    expected = [next(batcher) for _ in range(80)]
    fresh = BucketBatcher(arrays, 8, seed=3)
    fresh.load_state_dict(state)
    for a, b in zip(expected, (next(fresh) for _ in range(80))):
        assert all(a[k].equal(b[k]) for k in a)
    assert batcher.epoch > 1.0


@pytest.mark.data
def test_multi30k_reads_29000_pairs():
    corpus = ParallelCorpus(
        data_path("multi30k", "train.de"), data_path("multi30k", "train.en"), max_pairs=None
    )
    assert len(corpus) == 29000 and corpus.n_skipped == 0
    assert corpus.pairs()[0][1].startswith("Two young")


def test_from_data_config(tmp_path):
    from textdecade.config import DataConfig

    src, tgt = write(tmp_path / "a.de", SRC[:2]), write(tmp_path / "a.en", TGT[:2])
    corpus = ParallelCorpus.from_config(DataConfig(source=str(src), target=str(tgt)))
    assert corpus.pairs() == [("Ein Hund läuft.", "A dog runs."), (SRC[1], TGT[1])]
    assert ParallelCorpus.from_config(DataConfig(corpus=("x.txt",))) is None
    # Half a parallel corpus is refused when the config is built, before any work starts.
    with pytest.raises(ConfigError, match="data.target .* needs data.source"):
        DataConfig(target=str(tgt))
