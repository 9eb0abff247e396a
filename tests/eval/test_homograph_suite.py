"""The built-in homograph suite: its size, balance and format, and its frozen release 1."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import numpy as np
import pytest

from textdecade.cli import main
from textdecade.errors import FormatError, UserError
from textdecade.eval.homograph import evaluate_homographs
from textdecade.eval.suite import run_homograph
from textdecade.eval.vectors import Vectors
from textdecade.eval.wsd_data import builtin_suite_path, read_sense_tsv

# sha256 of the suite's original 192 rows ('word<TAB>sense<TAB>index<TAB>sentence', joined
# by newlines, in file order), computed from homographs.tsv before release 2 was added:
# release 1 is frozen, so scores measured on it stay comparable.
RELEASE_1_SHA256 = "a09a994720aac853aa0a1f33d6bb0bf1317090e1697821b0c42db80562a93658"


def _rows(tasks):
    return [f"{t.word}\t{x.sense}\t{x.index}\t{' '.join(x.words)}" for t in tasks for x in t.train]


def test_suite_is_large_balanced_and_well_formed():
    tasks = read_sense_tsv()
    total = sum(len(t.train) for t in tasks)
    assert len(tasks) >= 40 and total >= 1200
    for t in tasks:
        counts = Counter(x.sense for x in t.train)
        assert len(t.train) >= 30 and len(counts) >= 2, t.word
        assert len(set(counts.values())) == 1, (t.word, counts)  # equal counts per sense
        assert all(s.startswith(f"{t.word}_") for s in counts), (t.word, counts)
        for x in t.train:
            # The target sits at the index, lowercase as listed, and nowhere else.
            assert x.words[x.index] == t.word, (t.word, x.words)
            assert [w.lower() for w in x.words].count(t.word) == 1, (t.word, x.words)
            assert 6 <= len(x.words) <= 25, x.words
    sentences = [" ".join(x.words) for t in tasks for x in t.train]
    assert len(set(sentences)) == len(sentences)  # no sentence twice
    header = builtin_suite_path().read_text(encoding="utf-8")
    assert f"# {len(tasks)} words, {total:,} sentences" in header  # the comment stays true


def test_release_1_is_the_original_192_rows():
    old = read_sense_tsv(release=1)
    rows = _rows(old)
    assert len(rows) == 192 and len(old) == 12
    assert hashlib.sha256("\n".join(rows).encode("utf-8")).hexdigest() == RELEASE_1_SHA256
    raw = [
        line.split("\t")
        for line in builtin_suite_path().read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert all(len(p) == 5 for p in raw) and {p[4] for p in raw} == {"1", "2"}
    assert ["\t".join(p[:4]) for p in raw if p[4] == "1"] == rows
    everything = {t.word: t for t in read_sense_tsv()}
    for t in old:  # every original word grew, and its original rows come first
        assert everything[t.word].train[: len(t.train)] == t.train


def test_four_field_files_and_release_filter(tmp_path):
    tsv = tmp_path / "mine.tsv"
    tsv.write_text(
        "# four fields, as users write them\n"
        "bank\tbank_river\t1\tthe bank of the river\n"
        "bank\tbank_money\t1\tthe bank lends money\n",
        encoding="utf-8",
    )
    (task,) = read_sense_tsv(tsv)
    assert [x.sense for x in task.train] == ["bank_river", "bank_money"]
    assert len(read_sense_tsv(tsv, release=1)[0].train) == 2  # no release field: release 1
    tsv.write_text(
        "bank\tbank_river\t1\tthe bank of the river\t1\n"
        "bank\tbank_money\t1\tthe bank lends money\t3\n"
        "bank\tbank_money\t3\tmoney in the bank\n",
        encoding="utf-8",
    )
    assert len(read_sense_tsv(tsv)[0].train) == 3
    assert [x.sense for x in read_sense_tsv(tsv, release=2)[0].train] == [
        "bank_river",
        "bank_money",
    ]
    with pytest.raises(FormatError, match="no instances of release 0 or earlier"):
        read_sense_tsv(tsv, release=0)
    tsv.write_text("bank\tbank_river\t1\tthe bank of the river\tfirst\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"mine.tsv:1: release 'first' is not a number"):
        read_sense_tsv(tsv)


def test_static_vectors_score_mfs_on_the_whole_suite_and_on_release_1(tmp_path):
    tasks = read_sense_tsv()
    words = sorted({w for t in tasks for x in t.train for w in x.words})
    static = Vectors(words, np.random.default_rng(0).standard_normal((len(words), 8)))
    full = evaluate_homographs(static)
    assert sum(w.n for w in full.words) == sum(len(t.train) for t in tasks)
    assert full.accuracy == full.mfs_accuracy == 0.5  # balanced senses: MFS is a coin
    old = run_homograph(static, release=1)
    assert sum(w.n for w in old.words) == 192 and len(old.words) == 12
    assert old.data == "built-in suite (release 1)" and old.accuracy == 0.5
    root = tmp_path / "cwsd" / "bank"
    root.mkdir(parents=True)
    (root / "classes_map.txt").write_text('{"0": "bank_river"}')
    with pytest.raises(UserError, match="a release applies to a sense TSV"):
        evaluate_homographs(static, root.parent, release=1)


def test_cli_scores_release_1_of_the_builtin_suite(tmp_path, capsys):
    words = sorted({w for t in read_sense_tsv() for x in t.train for w in x.words})
    path = tmp_path / "static.bin"
    Vectors(words, np.random.default_rng(2).standard_normal((len(words), 4))).save(path)
    assert main(["eval", "homograph", str(path), "--release", "1", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["data"] == "built-in suite (release 1)" and len(out["words"]) == 12
    assert sum(w["n"] for w in out["words"]) == 192 and out["accuracy"] == out["mfs_accuracy"]
