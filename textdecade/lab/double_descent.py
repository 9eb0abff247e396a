"""``textdecade lab double-descent``: model-wise double descent (Nakkiran et al. 2019).

Test error against width first falls, then rises to a peak where the model just manages
to fit (interpolate) its noisy training labels, then falls again as the width grows past
that threshold. The effect needs models trained to interpolation, label noise, and many
widths; on 2 CPU cores the one design that gives all three in minutes is a classifier on
frozen features, not a Transformer trained through the engine (a width sweep of language
models trained to interpolation is hours, not minutes). So:

* data: CoarseWSD-20 (shared data): sentences labelled with the sense of an ambiguous
  noun; the ``classes`` most frequent senses, ``train_size`` training and ``test_size``
  test sentences (seeded draws from its own train and test splits);
* features: sentence embeddings of a textdecade model (default all-MiniLM-L6-v2 through
  ``textdecade.load``, mean-pooled), projected onto their first ``dims`` principal
  components of the training set: a narrow input keeps each hidden unit cheap (dims +
  classes + 1 parameters) so that the interpolation threshold falls inside a width grid
  that a CPU trains to convergence;
* label noise: exactly ``round(noise x train_size)`` training labels replaced by another
  class (the test labels stay clean);
* model: a one-hidden-layer ReLU MLP of width W, trained full-batch with Adam for
  ``steps`` steps (each step one epoch), no weight decay or early stopping: long enough
  that the wide models reach zero training error.

Every (width, seed) is saved to ``results.json`` as it finishes; a rerun skips them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from textdecade.errors import UserError
from textdecade.io import write_json
from textdecade.lab.runner import _open_plan, _say

RESULTS = "results.json"
FEATURES = "features.npz"
#: A log grid, denser around the threshold measured at the default size (16 to 32).
WIDTHS = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 128, 256, 512, 1024)
#: How often (steps) the curve of each run records its train and test error.
CURVE_EVERY = 25


@dataclass
class DoubleDescentSettings:
    """What defines the experiment (saved in ``plan.json``)."""

    experiment: str = "double-descent"
    widths: list[int] = field(default_factory=lambda: list(WIDTHS))
    seeds: int = 3
    noise: float = 0.2
    train_size: int = 500
    test_size: int = 1000
    classes: int = 5
    dims: int = 16
    steps: int = 500
    lr: float = 0.01
    encoder: str = "minilm"  # or a textdecade run directory (textdecade.load)


def check_settings(s: DoubleDescentSettings) -> None:
    """Every number, checked before any work (one line each)."""
    if not s.widths or any(w < 1 for w in s.widths):
        raise UserError(f"--widths must be positive hidden sizes, got {s.widths}")
    if s.seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {s.seeds}")
    if not 0 <= s.noise < 1:
        raise UserError(f"--noise must be a fraction in [0, 1), got {s.noise}")
    for name in ("train_size", "test_size", "dims", "steps"):
        if getattr(s, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be positive, got {getattr(s, name)}")
    if s.classes < 2:
        raise UserError(f"--classes must be at least 2, got {s.classes}")
    if not s.lr > 0:
        raise UserError(f"--lr must be positive, got {s.lr}")
    s.widths = sorted(set(s.widths))


def corrupt_labels(labels: np.ndarray, fraction: float, classes: int, seed: int) -> np.ndarray:
    """A copy of ``labels`` with exactly ``round(fraction x n)`` of them, chosen at
    random, replaced by a different class drawn uniformly from the others."""
    rng = np.random.default_rng(seed)
    noisy = labels.copy()
    flip = rng.permutation(len(labels))[: round(fraction * len(labels))]
    noisy[flip] = (labels[flip] + rng.integers(1, classes, len(flip))) % classes
    return noisy


def load_senses(split: str) -> tuple[list[str], list[str]]:
    """CoarseWSD-20's ``split`` (train or test): sentences and their sense labels."""
    from textdecade.data.shared import shared_path

    root = shared_path("coarsewsd20")
    if root is None:
        raise UserError(
            "lab double-descent needs the CoarseWSD-20 data (../shared/data/coarsewsd20)"
        )
    texts, senses = [], []
    for word in sorted(p for p in root.iterdir() if (p / "classes_map.txt").is_file()):
        names = json.loads((word / "classes_map.txt").read_text(encoding="utf-8"))
        data = (word / f"{split}.data.txt").read_text(encoding="utf-8").splitlines()
        gold = (word / f"{split}.gold.txt").read_text(encoding="utf-8").splitlines()
        for line, label in zip(data, gold, strict=True):
            texts.append(line.split("\t", 1)[1])
            senses.append(names[label.strip()])
    return texts, senses


def _draw(texts, senses, keep: list[str], size: int, seed: int):
    rows = [i for i, s in enumerate(senses) if s in keep]
    if len(rows) < size:
        raise UserError(f"only {len(rows)} sentences of the {len(keep)} senses, asked for {size}")
    pick = np.random.default_rng(seed).permutation(rows)[:size]
    return [texts[i] for i in pick], np.array([keep.index(senses[i]) for i in pick])


def _encoder(name: str):
    import textdecade as td

    if name == "minilm":
        from textdecade.eval.contextual import minilm_dir

        return td.load(minilm_dir(), device="cpu")
    return td.load(name, device="cpu")


def features(out: Path, s: DoubleDescentSettings) -> dict[str, np.ndarray]:
    """The projected features and clean labels (computed once into ``features.npz``)."""
    path = out / FEATURES
    if path.is_file():
        with np.load(path, allow_pickle=False) as saved:
            return dict(saved)
    train_texts, train_senses = load_senses("train")
    test_texts, test_senses = load_senses("test")
    # the most frequent senses of the training split, most frequent first
    names, counts = np.unique(train_senses, return_counts=True)
    keep = [str(n) for n in names[np.argsort(-counts, kind="stable")][: s.classes]]
    xtr_text, ytr = _draw(train_texts, train_senses, keep, s.train_size, seed=0)
    xte_text, yte = _draw(test_texts, test_senses, keep, s.test_size, seed=0)
    _say(f"lab double-descent: embedding {len(xtr_text) + len(xte_text)} sentences")
    model = _encoder(s.encoder)
    xtr = np.asarray(model.embed(xtr_text, batch_size=64), np.float64)
    xte = np.asarray(model.embed(xte_text, batch_size=64), np.float64)
    mean = xtr.mean(0)
    _, _, vt = np.linalg.svd(xtr - mean, full_matrices=False)
    proj = vt[: s.dims].T
    ftr, fte = (xtr - mean) @ proj, (xte - mean) @ proj
    scale = ftr.std()
    data = {
        "train_x": (ftr / scale).astype(np.float32),
        "test_x": (fte / scale).astype(np.float32),
        "train_y": ytr,
        "test_y": yte,
        "senses": np.array(keep),
    }
    np.savez(path, **data)
    return data


def train_width(data: dict, width: int, seed: int, s: DoubleDescentSettings) -> dict[str, Any]:
    """Train one width on the seed's noisy labels; its final errors, losses and curve."""
    import torch
    from torch.nn import functional as F

    noisy = corrupt_labels(data["train_y"], s.noise, s.classes, seed)
    x, y = torch.from_numpy(data["train_x"]), torch.from_numpy(noisy).long()
    clean = torch.from_numpy(data["train_y"]).long()
    xt, yt = torch.from_numpy(data["test_x"]), torch.from_numpy(data["test_y"]).long()
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], width), torch.nn.ReLU(), torch.nn.Linear(width, s.classes)
    )
    opt = torch.optim.Adam(model.parameters(), lr=s.lr)
    curve = []
    t0 = time.perf_counter()

    def measure(step: int) -> dict[str, float]:
        with torch.no_grad():
            out, test = model(x), model(xt)
        return {
            "step": step,
            "train_loss": F.cross_entropy(out, y).item(),
            "train_error": (out.argmax(1) != y).float().mean().item(),
            "test_loss": F.cross_entropy(test, yt).item(),
            "test_error": (test.argmax(1) != yt).float().mean().item(),
        }

    for step in range(1, s.steps + 1):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % CURVE_EVERY == 0 or step == s.steps:
            curve.append(measure(step))
    final = dict(curve[-1])
    with torch.no_grad():
        # how much of the noise it memorised: the flipped labels it reproduces
        flipped = noisy != data["train_y"]
        predicted = model(x).argmax(1).numpy()
    final["noisy_fit"] = (
        float((predicted[flipped] == noisy[flipped]).mean()) if flipped.any() else None
    )
    final["clean_train_error"] = float((predicted != clean.numpy()).mean())
    n_params = sum(p.numel() for p in model.parameters())
    return {
        **final,
        "width": width,
        "seed": seed,
        "n_params": n_params,
        "curve": curve,
        "seconds": time.perf_counter() - t0,
    }


def run_double_descent(
    out_dir: str | Path,
    settings: DoubleDescentSettings,
    *,
    device: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,  # noqa: ARG001 - the lab's common signature; nothing to show
) -> Path:
    """Run (or resume) every width x seed into ``out_dir``; returns the report's path."""
    import torch

    from textdecade.lab.double_descent_report import write_report

    check_settings(settings)
    if device not in (None, "cpu", "auto"):
        raise UserError("lab double-descent trains small MLPs on the CPU; --device does not apply")
    out = Path(out_dir)
    plan = _open_plan(out, settings, resume, overwrite)
    settings = DoubleDescentSettings(**plan["settings"])
    data = features(out, settings)
    path = out / RESULTS
    results = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    todo = [(w, s) for s in range(1, settings.seeds + 1) for w in settings.widths]
    todo = [(w, s) for w, s in todo if f"w{w}_s{s}" not in results]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is faster than two fighting
    try:
        for i, (width, seed) in enumerate(todo, 1):
            _say(f"lab double-descent [{i}/{len(todo)}] width {width}, seed {seed}")
            results[f"w{width}_s{seed}"] = train_width(data, width, seed, settings)
            write_json(path, results)
    finally:
        torch.set_num_threads(threads)
    return write_report(out, settings, data, results)
