"""Homographs: a real pretrained encoder separates senses, static vectors score exactly MFS."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import data_path
from textdecade.errors import FormatError, UserError
from textdecade.eval.contextual import StaticEncoder
from textdecade.eval.homograph import evaluate_homographs, occurrence_vectors
from textdecade.eval.vectors import Vectors
from textdecade.eval.wic import evaluate_wic
from textdecade.eval.wsd_data import read_coarsewsd, read_sense_tsv, read_wic

SUBSET = ["bank", "console", "bass", "mole", "organ", "match"]


@pytest.mark.slow
def test_minilm_beats_mfs_on_coarsewsd20_slice_and_static_lands_on_it(minilm, gensim_kv):
    root = data_path("coarsewsd20")
    opts = dict(words=["bank", "crane", "java"], max_per_sense=8, max_test_per_sense=8)
    res = evaluate_homographs(minilm, root, **opts, probe=True)
    assert [w.n for w in res.words] == [16, 16, 16] and res.mfs_accuracy == 0.5
    assert res.accuracy >= 0.75  # measured 0.92 (balanced caps: MFS is 0.5)
    assert res.macro_f1 > res.mfs_macro_f1 + 0.3
    assert res.probe_accuracy >= 0.75  # the linear probe on the same vectors: measured 0.875
    static = evaluate_homographs(Vectors.from_gensim(gensim_kv), root, **opts, probe=True)
    for w in static.words:  # same vector for every occurrence: exactly the baseline
        assert w.accuracy == w.mfs_accuracy and w.macro_f1 == w.mfs_macro_f1
        assert w.probe_accuracy == w.mfs_accuracy
    assert "most-frequent-sense" in res.format() and "linear probe" in res.format()


@pytest.mark.slow
def test_builtin_suite_leave_one_out(minilm):
    res = evaluate_homographs(minilm, words=SUBSET, layers="last4", probe=True)
    assert res.protocol == "leave-one-out" and len(res.words) == len(SUBSET)
    assert res.mfs_accuracy == 0.5  # 15 sentences per sense, two senses per word
    assert res.accuracy >= 0.8  # measured 0.94 here and over the whole suite (1,260)
    assert res.probe_accuracy >= 0.7  # cross-validated probe, same vectors: measured 0.97
    rng = np.random.default_rng(0)
    words = sorted({w for t in read_sense_tsv() for x in t.train for w in x.words})
    static = Vectors(words, rng.standard_normal((len(words), 16)))
    s = evaluate_homographs(static)
    assert s.accuracy == s.mfs_accuracy == 0.5 and len(s.words) >= 12
    vecs, senses = occurrence_vectors(static, "bank", max_per_sense=3)
    assert vecs.shape == (6, 16) and np.allclose(vecs, vecs[0])
    assert senses.count("bank_finance") == 3


def _wic_from_suite(tmp_path, words, name):
    """WiC files (our own sentences): neighbours of one sense (T) and across senses (F)."""
    data, gold = [], []
    for task in read_sense_tsv():
        if task.word not in words:
            continue
        by_sense = [[x for x in task.train if x.sense == s] for s in task.senses]
        for i in range(0, 8, 2):
            for a, b, same in (
                (by_sense[0][i], by_sense[0][i + 1], "T"),
                (by_sense[1][i], by_sense[0][i + 1], "F"),
                (by_sense[1][i], by_sense[1][i + 1], "T"),
            ):
                data.append(
                    f"{task.word}\tN\t{a.index}-{b.index}\t{' '.join(a.words)}\t{' '.join(b.words)}"
                )
                gold.append(same)
    (tmp_path / name).mkdir()
    (tmp_path / name / f"{name}.data.txt").write_text("\n".join(data) + "\n", encoding="utf-8")
    (tmp_path / name / f"{name}.gold.txt").write_text("\n".join(gold) + "\n", encoding="utf-8")


@pytest.mark.slow
def test_wic_threshold_from_train_accuracy_on_test(tmp_path, minilm):
    _wic_from_suite(tmp_path, ["bank", "bass", "seal"], "train")
    _wic_from_suite(tmp_path, ["crane", "spring", "pitcher"], "test")
    res = evaluate_wic(minilm, tmp_path)
    assert res.n == 36 and "train.data.txt" in res.fit_on
    assert res.majority == pytest.approx(2 / 3)
    assert res.accuracy >= res.majority + 0.05  # measured 0.78; the majority answer gets 0.67
    words = sorted({w for t in read_sense_tsv() for x in t.train for w in x.words})
    static = Vectors(words, np.random.default_rng(1).standard_normal((len(words), 8)))
    s = evaluate_wic(static, tmp_path)
    assert s.accuracy <= s.majority + 1e-9  # every pair has cosine 1: no better than majority


def test_readers_reject_malformed_files(tmp_path):
    wic = tmp_path / "x.data.txt"
    wic.write_text("bank\tN\t1-2\tThe bank is closed\tA river bank\n", encoding="utf-8")
    (tmp_path / "x.gold.txt").write_text("T\n", encoding="utf-8")
    assert read_wic(wic)[0].second.words[2] == "bank"
    wic.write_text("bank\tN\t1to2\tThe bank is closed\tA river bank\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"x.data.txt:1: indices"):
        read_wic(wic)
    wic.write_text("bank\tN\t1-9\tThe bank is closed\tA river bank\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"x.data.txt:1: target index 9 outside"):
        read_wic(wic)
    (tmp_path / "x.gold.txt").write_text("yes\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"x.gold.txt:1: expected T or F"):
        read_wic(wic)
    tsv = tmp_path / "s.tsv"
    tsv.write_text(
        "# comment\nbank\tbank_river\t1\tthe bank\nbank\tx\tthe bank\n", encoding="utf-8"
    )
    with pytest.raises(FormatError, match=r"s.tsv:3: expected 'word<TAB>sense"):
        read_sense_tsv(tsv)
    root = tmp_path / "cwsd"
    (root / "bank").mkdir(parents=True)
    (root / "bank" / "classes_map.txt").write_text('{"0": "money", "1": "river"}')
    for split in ("train", "test"):
        (root / "bank" / f"{split}.data.txt").write_text("1\tthe bank\n0\tbank x\n")
        (root / "bank" / f"{split}.gold.txt").write_text("0\n")
    with pytest.raises(FormatError, match=r"train.gold.txt:2: 1 gold labels for 2"):
        read_coarsewsd(root)
    (root / "bank" / "train.gold.txt").write_text("0\n7\n")
    with pytest.raises(FormatError, match=r"train.gold.txt:2: class '7'"):
        read_coarsewsd(root)


def test_coarsewsd_reader_on_real_data():
    root = data_path("coarsewsd20")
    tasks = read_coarsewsd(root, ["bank", "apple"])
    bank = {t.word: t for t in tasks}["bank"]
    lines = [
        len((root / "bank" / f"{s}.gold.txt").read_text().splitlines()) for s in ("train", "test")
    ]
    assert [len(bank.train), len(bank.test)] == lines and lines[0] > 1000
    assert bank.senses[0] == "bank_bank"  # class 0, the most frequent sense
    assert all(x.words[x.index] == "bank" for x in bank.train + bank.test)  # indices hit


def test_models_without_states_are_refused_plainly():
    with pytest.raises(UserError, match="has no contextual word states"):
        evaluate_homographs(object())
    enc = StaticEncoder(Vectors(["Bank"], np.ones((1, 3))))
    states = enc.word_states([["the", "bank"]])[0]
    assert states.shape == (2, 3) and states[0].sum() == 0 and states[1].sum() == 3
    with pytest.raises(UserError, match="unknown layers"):
        evaluate_homographs(enc, layers="first")


class _Oracle:
    """An encoder whose states name each sentence's sense: it separates every homograph."""

    def __init__(self):
        tasks = read_sense_tsv()
        senses = sorted({x.sense for t in tasks for x in t.train})
        self.sense = {tuple(x.words): senses.index(x.sense) for t in tasks for x in t.train}
        self.dim = len(senses)

    def word_states(self, sentences, layers="last", batch_size=32):
        out = []
        for s in sentences:
            v = np.zeros(self.dim, np.float32)
            v[self.sense[tuple(s)]] = 1.0
            out.append(np.tile(v, (len(s), 1)))
        return out

    def input_word_vectors(self, words):
        return np.zeros((len(words), self.dim), np.float32)


def test_scores_carry_intervals_and_the_mfs_difference_is_paired():
    from textdecade.eval.homograph import mfs_difference
    from textdecade.eval.paired import compare_results

    oracle = evaluate_homographs(_Oracle(), context=None, probe=True)
    assert oracle.accuracy == 1.0 and oracle.mfs_accuracy == 0.5
    for w in oracle.words:
        for name in ("accuracy", "macro_f1", "mfs_accuracy", "probe_accuracy"):
            assert w.intervals[name].contains(getattr(w, name)), (w.word, name)
    for name in ("accuracy", "macro_f1", "mfs_accuracy", "mfs_macro_f1", "probe_accuracy"):
        assert oracle.intervals[name].contains(getattr(oracle, name)), name
    mfs = oracle.intervals["mfs_accuracy"]
    assert mfs.low < 0.5 < mfs.high and mfs.high - mfs.low < 0.06  # 1,260 instances: +-2.8
    found = mfs_difference(oracle)
    assert found.p_value < 0.01 and found.difference.value == pytest.approx(0.5)
    assert "[" in oracle.format() and "homograph acc low" in oracle.summary()
    doc = oracle.to_dict()
    assert doc["intervals"]["accuracy"]["high"] == 1.0 and "gold" not in doc["words"][0]
    rng = np.random.default_rng(0)
    words = sorted({w for t in read_sense_tsv() for x in t.train for w in x.words})
    static = evaluate_homographs(Vectors(words, rng.standard_normal((len(words), 8))))
    same = mfs_difference(static)  # static vectors are the baseline, instance by instance
    assert same.p_value == 1.0 and same.difference.contains(0.0)
    cmp = compare_results("homograph", oracle, static).rows[0]
    assert cmp.paired.n == 1260 and cmp.paired.p_value < 0.01
    capped = evaluate_homographs(
        Vectors(words, rng.standard_normal((len(words), 8))), max_per_sense=4
    )
    with pytest.raises(UserError, match="different items"):
        compare_results("homograph", oracle, capped)
    assert evaluate_homographs(_Oracle(), context=None, ci=0).intervals == {}
