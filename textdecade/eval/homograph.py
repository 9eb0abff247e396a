"""Homographs: does a model's contextual vector of a word separate the word's senses?

Two classifiers on the frozen vectors, both used by Loureiro et al. 2021 on CoarseWSD-20:

* sense centroids and 1-nearest-centroid (the headline ``accuracy``): centroids are the
  mean target vectors of each sense in train, and a test occurrence takes the sense of
  the most cosine-similar centroid;
* a linear probe (``probe=True``, ``probe_accuracy``): logistic regression on the
  standardized vectors. Unlike centroids it learns the senses' priors and which
  dimensions matter, so weak or anisotropic vectors (small models trained for minutes)
  can still show the context they carry.

Accuracy and macro-F1 per word and overall sit beside the most-frequent-sense (MFS)
baseline. The built-in suite is scored leave-one-out: an instance never counts towards
its own centroid, and the probe is cross-validated. WiC is in :mod:`textdecade.eval.wic`.

A static model gives every occurrence the same vector, so all its centroids coincide;
cosine ties (within ``TIE``) go to the most frequent sense, and the probe can only learn
the prior, so static vectors land exactly on the MFS baseline with no special case: the
table shows what context buys.

Every score carries a bootstrap interval resampling instances, and the per-instance senses
stay on the result for paired tests (:mod:`~textdecade.eval.homograph_scores`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from textdecade.errors import UserError
from textdecade.eval.contextual import ContextualEncoder, StaticEncoder, _check_layers
from textdecade.eval.homograph_scores import HomographResult, WordScore, mfs_difference
from textdecade.eval.intervals import DEFAULT_LEVEL
from textdecade.eval.progress import bar, chunked_word_states
from textdecade.eval.vectors import Vectors
from textdecade.eval.wsd_data import (
    Instance,
    WordTask,
    cap_per_sense,
    read_coarsewsd,
    read_sense_tsv,
)

__all__ = [
    "HomographResult",
    "as_encoder",
    "evaluate_homographs",
    "mfs_difference",
    "occurrence_vectors",
]

TIE = 1e-5  # cosines closer than this count as equal (float noise of equal centroids)


def as_encoder(model) -> ContextualEncoder:
    """A :class:`ContextualEncoder` for an encoder or a :class:`Vectors` (static)."""
    if isinstance(model, Vectors):
        return StaticEncoder(model)
    if not isinstance(model, ContextualEncoder):
        raise UserError(
            f"{type(model).__name__} has no contextual word states (word_states), so it "
            "cannot be scored on homographs; give a BERT/GPT/seq2seq/Transformer run or vectors"
        )
    return model


def _crop(x: Instance, context: int | None) -> tuple[list[str], int]:
    """The target with at most ``context`` words on each side (long sentences cost time)."""
    if context is None:
        return list(x.words), x.index
    start = max(0, x.index - context)
    return list(x.words[start : x.index + context + 1]), x.index - start


def _target_vectors(
    encoder: ContextualEncoder,
    instances: list[Instance],
    layers: str,
    context: int | None,
    batch_size: int,
    progress: bool = False,
    desc: str = "homograph: encode",
) -> np.ndarray:
    """(N, D) vectors of the targets (pieces pooled by the encoder), in one pass."""
    crops = [_crop(x, context) for x in instances]
    states = chunked_word_states(
        encoder,
        [w for w, _ in crops],
        layers=layers,
        batch_size=batch_size,
        progress=progress,
        desc=desc,
    )
    return np.stack([s[i] for s, (_, i) in zip(states, crops)]).astype(np.float32)


def _unit(m: np.ndarray) -> np.ndarray:
    return m / np.maximum(np.linalg.norm(m, axis=-1, keepdims=True), 1e-12)


def _predict(sims: np.ndarray) -> np.ndarray:
    """Column of the best cosine per row; ties go to the first (most frequent) sense."""
    best = sims.max(axis=1, keepdims=True)
    return np.argmax(sims >= best - TIE, axis=1)


def _macro_f1(gold: np.ndarray, pred: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    labels = sorted(set(gold.tolist()))  # senses present in the evaluated instances
    return float(f1_score(gold, pred, labels=labels, average="macro", zero_division=0))


def _probe(train: np.ndarray, train_y: np.ndarray, test: np.ndarray | None) -> np.ndarray:
    """Logistic-regression predictions on standardized vectors: of ``test``, or (None)
    cross-validated predictions of ``train`` itself (the leave-one-out protocol)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n = len(train if test is None else test)
    if len(set(train_y.tolist())) < 2:  # one sense seen: nothing to learn but the prior
        return np.full(n, train_y[0])
    if np.ptp(train, axis=0).max() == 0:
        # Every occurrence has the same vector (a static model): the prior alone, with
        # ties (balanced caps) going to the most frequent sense, as the centroids do.
        return np.zeros(n, dtype=train_y.dtype)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    if test is not None:
        return probe.fit(train, train_y).predict(test)
    folds = int(min(5, max(2, np.bincount(train_y).min())))
    cv = StratifiedKFold(folds, shuffle=True, random_state=0)
    return cross_val_predict(probe, train, train_y, cv=cv)


def _score_task(
    task: WordTask, vecs: np.ndarray, leave_one_out: bool, probe: bool = False
) -> WordScore:
    """Nearest centroid (and the probe) on ``task``; ``vecs`` holds train rows then test rows."""
    sense_id = {s: i for i, s in enumerate(task.senses)}
    train_y = np.array([sense_id[x.sense] for x in task.train])
    n_train, k = len(task.train), len(task.senses)
    train = vecs[:n_train]
    sums = np.zeros((k, vecs.shape[1]), np.float64)
    np.add.at(sums, train_y, train)
    counts = np.bincount(train_y, minlength=k).astype(np.float64)
    if leave_one_out:
        test, gold = train, train_y
        # Each instance's own sense centroid without it: (sum - x) / (n - 1).
        own = (sums[gold] - test) / np.maximum(counts[gold] - 1, 1)[:, None]  # (N, D)
        cents = np.broadcast_to(
            sums / np.maximum(counts, 1)[:, None], (len(test), k, sums.shape[1])
        )
        cents = cents.copy()
        cents[np.arange(len(test)), gold] = own
        sims = np.einsum("nkd,nd->nk", _unit(cents), _unit(test.astype(np.float64)))
        empty = (counts[None, :] - np.eye(k)[gold]) <= 0  # a sense with no other instance
        sims[empty] = -np.inf
    else:
        test = vecs[n_train:]
        gold = np.array([sense_id[x.sense] for x in task.test])
        sims = _unit(test.astype(np.float64)) @ _unit(sums / np.maximum(counts, 1)[:, None]).T
        sims[:, counts == 0] = -np.inf
    pred = _predict(sims)
    mfs = np.zeros_like(gold)  # senses are ordered most frequent first
    probe_acc, guess = None, None
    if probe:
        x = train.astype(np.float64)
        guess = _probe(x, train_y, None if leave_one_out else test.astype(np.float64))
        probe_acc = float(np.mean(guess == gold))
    return WordScore(
        task.word,
        len(gold),
        k,
        float(np.mean(pred == gold)),
        _macro_f1(gold, pred),
        float(np.mean(mfs == gold)),
        _macro_f1(gold, mfs),
        probe_acc,
        gold,
        pred,
        None if guess is None else np.asarray(guess),
    )


def _is_coarsewsd(path: Path) -> bool:
    return path.is_dir() and any(path.glob("*/classes_map.txt"))


def evaluate_homographs(
    model,
    data: str | Path | None = None,
    layers: str = "last",
    words: list[str] | None = None,
    max_per_sense: int | None = None,
    max_test_per_sense: int | None = None,
    context: int | None = 40,
    batch_size: int = 32,
    probe: bool = False,
    release: int | None = None,
    ci: float = DEFAULT_LEVEL,
    progress: bool = False,
) -> HomographResult:
    """Sense separation by nearest sense centroid (and, with ``probe``, a linear probe).

    Args:
        model: a :class:`ContextualEncoder` or static :class:`Vectors`.
        data: a CoarseWSD-20 folder (train/test), a sense TSV (leave-one-out), or None for
            the built-in suite (leave-one-out).
        layers: "last" or "last4" (sum of the last four layers).
        words: only these words.
        max_per_sense: cap of train instances per sense (speed); for a sense TSV, of all.
        max_test_per_sense: cap of CoarseWSD test instances per sense.
        context: words kept on each side of the target (None: whole sentences).
        batch_size: sentences per forward pass.
        probe: also score a logistic-regression probe on the same vectors.
        release: for a sense TSV, only rows of this release or earlier (``1``: the built-in
            suite's first 192 sentences, which older scores were measured on).
        ci: confidence level of the intervals (resampling instances); 0: none.
        progress: show progress bars on stderr (encoding the instances, scoring words).

    Returns:
        A :class:`HomographResult` with the MFS baseline beside each score.
    """
    encoder = as_encoder(model)
    _check_layers(layers)
    path = None if data is None else Path(data)
    if path is not None and _is_coarsewsd(path):
        if release is not None:
            raise UserError(f"{path}: a release applies to a sense TSV, not to CoarseWSD-20")
        tasks = read_coarsewsd(path, words, max_per_sense, max_test_per_sense)
        protocol = "train/test"
    else:
        tasks = read_sense_tsv(path, release)
        if words:
            known = {t.word for t in tasks}
            if missing := [w for w in words if w not in known]:
                raise UserError(f"no instances of {missing} in the homograph data")
            tasks = [t for t in tasks if t.word in words]
        if max_per_sense is not None:
            for t in tasks:
                t.train = cap_per_sense(t.train, max_per_sense)
        protocol = "leave-one-out"
    instances = [x for t in tasks for x in (*t.train, *t.test)]
    vecs = _target_vectors(encoder, instances, layers, context, batch_size, progress)
    name = str(path) if path else "built-in suite"
    if release is not None:
        name += f" (release {release})"
    result = HomographResult(name, layers, protocol)
    start = 0
    for t in bar(tasks, desc="homograph: score", unit="word", enabled=progress):
        n = len(t.train) + len(t.test)
        loo = protocol != "train/test"
        result.words.append(_score_task(t, vecs[start : start + n], loo, probe))
        start += n
    if ci and result.words:
        result.add_intervals(ci)
    return result


def occurrence_vectors(
    model,
    word: str,
    data: str | Path | None = None,
    layers: str = "last",
    max_per_sense: int | None = 50,
    context: int | None = 40,
) -> tuple[np.ndarray, list[str]]:
    """Vectors (N, D) of a word's occurrences and their senses (for sense maps)."""
    path = None if data is None else Path(data)
    if path is not None and _is_coarsewsd(path):
        task = read_coarsewsd(path, [word], max_per_sense, max_per_sense)[0]
    else:
        found = [t for t in read_sense_tsv(path) if t.word == word]
        if not found:
            raise UserError(f"no instances of {word!r} in the homograph data")
        task = found[0]
        task.train = cap_per_sense(task.train, max_per_sense)
    instances = [*task.train, *task.test]
    vecs = _target_vectors(as_encoder(model), instances, layers, context, 32)
    return vecs, [x.sense for x in instances]
