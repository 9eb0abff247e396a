"""WiC (Pilehvar & Camacho-Collados 2019): same sense in two sentences, or not?

The cosine of the two target vectors (pieces pooled, layers as chosen) is thresholded at the
value that does best on the fitting split (train, else dev); accuracy is reported on test
beside the majority-label baseline. A static model gives cosine 1 to every pair, so it can
do no better than that baseline. Accuracy carries a percentile-bootstrap interval over the
test pairs (the threshold stays the one fitted); per-pair results stay on the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from textdecade.errors import UserError
from textdecade.eval.contextual import _check_layers
from textdecade.eval.homograph import _target_vectors, _unit, as_encoder
from textdecade.eval.intervals import DEFAULT_LEVEL, Interval, bootstrap
from textdecade.eval.report import format_table, interval_dict, summary_interval, table_row
from textdecade.eval.wsd_data import WicPair, read_wic

__all__ = ["WicResult", "evaluate_wic"]


@dataclass
class WicResult:
    """WiC accuracy at the threshold chosen on the fitting split."""

    data: str
    layers: str
    threshold: float
    fit_on: str
    accuracy: float
    fit_accuracy: float
    n: int
    majority: float  # accuracy of always answering the majority label
    interval: Interval | None = None  # of the accuracy, resampling test pairs
    correct: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)  # per pair

    _FIELDS = ("data", "layers", "threshold", "fit_on", "accuracy", "fit_accuracy", "n")

    def summary(self) -> dict:
        """Headline metrics for one row of a side-by-side table (:func:`report.compare`)."""
        out = {"WiC acc": self.accuracy}
        summary_interval(out, "WiC acc", self.interval)
        return out | {"WiC majority": self.majority}

    def to_dict(self) -> dict:
        """JSON-able dict of every number (for ``--format json``)."""
        own = {k: getattr(self, k) for k in (*self._FIELDS, "majority")}
        return {"task": "wic", **own, **interval_dict({"accuracy": self.interval})}

    def format(self) -> str:
        """A readable Markdown table (for ``--format table``)."""
        cols = ["data", "accuracy", "majority", "threshold", "fit_on", "fit_accuracy", "n"]
        row = table_row(self.to_dict(), {"accuracy": self.interval})
        return f"WiC (layers={self.layers})\n\n" + format_table([row], cols)


def _pair_cosines(
    encoder, pairs: list[WicPair], layers, context, batch_size, progress=False, desc="wic"
) -> np.ndarray:
    flat = [x for p in pairs for x in (p.first, p.second)]
    vecs = _unit(_target_vectors(encoder, flat, layers, context, batch_size, progress, desc))
    return np.einsum("nd,nd->n", vecs[0::2], vecs[1::2])  # (P,)


def _best_threshold(cos: np.ndarray, gold: np.ndarray) -> tuple[float, float]:
    """The threshold (midpoint between sorted cosines) that maximizes accuracy."""
    values = np.sort(np.unique(cos))
    candidates = np.concatenate(
        [[values[0] - 1e-6], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]]
    )
    accs = [(np.mean((cos > t) == gold), -abs(t)) for t in candidates]
    best = int(np.argmax([a for a, _ in accs]))
    return float(candidates[best]), float(accs[best][0])


def evaluate_wic(
    model,
    test: str | Path,
    fit: str | Path | None = None,
    layers: str = "last",
    context: int | None = 40,
    batch_size: int = 32,
    ci: float = DEFAULT_LEVEL,
    progress: bool = False,
) -> WicResult:
    """WiC: same sense or not, from the cosine of the two target vectors.

    Args:
        model: a :class:`ContextualEncoder` or :class:`Vectors`.
        test: a WiC ``*.data.txt`` (gold beside it) or a folder holding ``train``/``dev``/
            ``test`` data files; with a folder, the threshold is fitted on train (or dev).
        fit: the file to choose the threshold on; None with a single file fits on the test
            file itself (optimistic, and ``fit_on`` says so).
        layers: "last" or "last4".
        ci: confidence level of the accuracy's interval (resampling test pairs); 0: none.
        progress: show progress bars on stderr (encoding the fit and test pairs).
    """
    encoder = as_encoder(model)
    _check_layers(layers)
    test = Path(test)
    if test.is_dir():
        found = {p.name.split(".")[0]: p for p in test.rglob("*.data.txt")}
        if "test" not in found and "dev" not in found:
            raise UserError(f"{test}: no test.data.txt or dev.data.txt (WiC layout)")
        test_path = found.get("test") or found["dev"]
        fit_path = Path(fit) if fit else found.get("train") or found.get("dev")
    else:
        test_path, fit_path = test, Path(fit) if fit else test
    test_pairs, fit_pairs = read_wic(test_path), read_wic(fit_path)
    for path, pairs in ((test_path, test_pairs), (fit_path, fit_pairs)):
        if any(p.same is None for p in pairs):
            raise UserError(f"{path}: no gold file beside it (expected *.gold.txt)")
    gold_fit = np.array([p.same for p in fit_pairs])
    threshold, fit_acc = _best_threshold(
        _pair_cosines(
            encoder, fit_pairs, layers, context, batch_size, progress, "wic: encode fit pairs"
        ),
        gold_fit,
    )
    gold = np.array([p.same for p in test_pairs])
    cos = _pair_cosines(
        encoder, test_pairs, layers, context, batch_size, progress, "wic: encode test pairs"
    )
    fit_on = str(fit_path) + (
        " (the test file itself: optimistic)" if fit_path == test_path else ""
    )
    majority = max(float(np.mean(gold)), 1.0 - float(np.mean(gold)))
    correct = ((cos > threshold) == gold).astype(np.float64)
    return WicResult(
        str(test_path),
        layers,
        threshold,
        fit_on,
        float(np.mean(correct)),
        fit_acc,
        len(gold),
        majority,
        bootstrap(correct, level=ci) if ci else None,
        correct,
    )
