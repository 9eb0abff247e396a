"""The decade's step-by-step table: each family against the one before it, same items."""

from __future__ import annotations

import numpy as np

from textdecade.decade.report import NAMES
from textdecade.decade.steps import markdown_steps, step_rows
from textdecade.eval.scorecard import item_outcomes


def _bits(hits) -> str:
    return "".join("1" if h else "0" for h in hits)


def _plan(**items):
    return {"families": {f: {"scores": {"items": it}} for f, it in items.items()}}


def test_a_planted_gain_is_found_and_an_identical_step_is_not():
    rng = np.random.default_rng(0)
    base = rng.random(600) < 0.5
    better = base | (rng.random(600) < 0.3)  # about 15 points more, on the same instances
    words = [["bank", 300], ["crane", 300]]
    same = {"homograph_words": words, "homograph_accuracy": _bits(base)}
    plan = _plan(
        word2vec=dict(same),
        glove=dict(same),  # identical: no difference, p = 1
        seq2seq={"homograph_words": words, "homograph_accuracy": _bits(better)},
    )
    rows = step_rows(plan, ["word2vec", "glove", "seq2seq"])
    assert [(r["from"], r["to"], r["task"]) for r in rows] == [
        ("word2vec", "glove", "homograph centroid"),
        ("glove", "seq2seq", "homograph centroid"),
    ]
    flat, gain = rows
    assert flat["difference"] == 0 and flat["p_value"] == 1.0
    assert gain["difference"] == better.mean() - base.mean() and gain["p_value"] < 0.001
    assert gain["low"] > 0 and gain["items"] == 600
    table = markdown_steps(rows, NAMES)
    assert "GloVe (2014) → Seq2seq+attention (2014)" in table and "*" in table.splitlines()[-1]
    assert "*" not in table.splitlines()[-2]


def test_analogy_compares_the_questions_both_answered_and_other_items_are_skipped():
    plan = _plan(
        bert={"analogy": "1-01-", "homograph_words": [["bank", 2]], "homograph_accuracy": "11"},
        gpt={"analogy": "-1111", "homograph_words": [["java", 2]], "homograph_accuracy": "00"},
    )
    (row,) = step_rows(plan, ["bert", "gpt"])  # other homograph words: not compared
    assert row["task"] == "analogy" and row["items"] == 2  # questions 3 and 4 only
    assert row["difference"] == 0.5  # gpt 2/2 against bert 1/2


def test_item_outcomes_mark_unanswered_questions():
    class _Total:
        total = 5

    class _Analogy:
        total = _Total()
        answered_index = np.array([0, 3])
        hits = np.array([True, False])

    assert item_outcomes(_Analogy(), None) == {"analogy": "1--0-"}
