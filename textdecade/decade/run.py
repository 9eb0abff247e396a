"""The decade in one command: its families, one corpus, one tokenizer, one table.

``textdecade decade -o DIR`` trains the shared tokenizer once, then Word2Vec, GloVe,
attention seq2seq, the Transformer, ELMo, BERT, GPT and Transformer-XL on the same corpus
through the same engine, scores each on the same benchmarks
(:mod:`textdecade.eval.scorecard`) and writes ``DIR/report.md`` and ``DIR/report.json`` with pictures beside them.

It is resumable: ``DIR/plan.json`` records the settings and what is finished; calling
the same command again skips finished families and resumes an interrupted one.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from textdecade.decade.naming import run_names
from textdecade.errors import UserError
from textdecade.extras import check
from textdecade.io import write_json
from textdecade.models import FAMILIES
from textdecade.pretrain.lock import LOCK_NAME, RunLock

#: The decade in order of publication.
ORDER = ("word2vec", "glove", "seq2seq", "transformer", "elmo", "bert", "gpt", "transformer-xl")
PLAN = "plan.json"
#: Words a corpus needs, at least, for each preset to mean anything.
MIN_WORDS = {"tiny": 20_000, "small": 1_000_000, "base": 10_000_000}
#: The shared tokenizer's size per preset.
VOCAB = {"tiny": 8000, "small": 16384, "base": 32768}


#: Within the tiny decade the neural families train fewer steps than their own tiny
#: presets, so all eight fit in about 15 minutes on 2 idle CPU cores. The steps follow each
#: one's measured step time there (seq2seq ~0.6 s, the Transformer ~0.65 s, GPT ~0.33 s;
#: ELMo and Transformer-XL estimated at GPT's ~0.4-0.45 s); BERT keeps its preset.
def _steps(n: int) -> list[str]:
    return [f"train.steps={n}", f"train.eval_every={n // 4}", f"train.warmup_steps={n // 10}"]


BUDGET = {
    "tiny": {
        "seq2seq": _steps(250),
        "transformer": _steps(250),
        "elmo": _steps(250),
        "gpt": _steps(400),
        "transformer-xl": _steps(250),
    },
}


@dataclass
class DecadeSettings:
    """What defines a decade run (saved in ``plan.json``)."""

    corpus: list[str] = field(default_factory=list)
    dataset: str | None = None
    preset: str = "tiny"
    families: list[str] = field(default_factory=lambda: list(ORDER))
    overrides: list[str] = field(default_factory=list)
    homograph_data: str | None = None
    max_texts: int | None = None
    sample_texts: int = 3000  # corpus texts whose contextual states give static vectors
    seeds: int = 1  # runs of each family, with train.seed, seed + 1, ...
    minutes: float | None = None  # the same wall-clock training budget for every family

    def __post_init__(self) -> None:
        if not isinstance(self.seeds, int) or self.seeds < 1:
            raise UserError(f"--seeds must be a positive integer, got {self.seeds}")
        if self.minutes is not None and not self.minutes > 0:
            raise UserError(f"--minutes must be positive, got {self.minutes:g}")


def split_overrides(overrides: list[str], families: list[str]) -> dict[str, list[str]]:
    """``gpt.train.steps=5`` applies to GPT only; ``train.steps=5`` to every family."""
    out: dict[str, list[str]] = {f: [] for f in families}
    for text in overrides:
        head = text.split(".", 1)[0]
        if head in FAMILIES:
            if head in out:
                out[head].append(text.split(".", 1)[1])
        else:
            for family in families:
                out[family].append(text)
    return out


def _check_families(families: list[str]) -> list[str]:
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise UserError(f"unknown family '{unknown[0]}' (choose from: {', '.join(ORDER)})")
    return [f for f in ORDER if f in families]


def _open_plan(out: Path, settings: DecadeSettings, resume: bool, overwrite: bool) -> dict:
    plan_path = out / PLAN
    if plan_path.exists() and overwrite:
        from textdecade.pretrain.rundir import remove_all_but_the_lock

        remove_all_but_the_lock(out)
    elif plan_path.exists():
        plan = json.loads(plan_path.read_text(encoding="utf-8"))
        if plan["settings"] == asdict(settings) or resume:
            return plan
        raise UserError(
            f"{out} holds a decade report made with other settings; pass --resume to "
            "continue it or --overwrite to replace it"
        )
    elif out.is_dir() and any(p.name != LOCK_NAME for p in out.iterdir()) and not overwrite:
        raise UserError(f"{out} is not empty and holds no decade report; choose another -o")
    out.mkdir(parents=True, exist_ok=True)
    plan = {"settings": asdict(settings), "families": {}}
    write_json(plan_path, plan)
    return plan


@contextlib.contextmanager
def _decade_lock(out: Path):
    """One process at a time writes a decade directory (its families' runs have their own
    locks too). A start refused before any family trained (a corpus too small, an unknown
    family) leaves no directory it made behind, so the corrected rerun is not refused as a
    report "made with other settings"."""
    made = not out.exists()
    lock = RunLock(out).acquire()
    try:
        yield
    except UserError:
        if made and not (out / "runs").exists():
            shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        lock.release()


def check_extras() -> None:
    """What the decade needs beyond ``pip install textdecade``, checked before the directory
    or the tokenizer: matplotlib draws its pictures, and gensim carries its analogy and
    similarity sets (and the built-in sample, when no corpus is given).

    Raises:
        MissingExtra: one of them is not installed; one line naming the extra.
    """
    check("matplotlib", "textdecade decade (its pictures)")
    check("gensim", "textdecade decade (its analogy and similarity sets come with gensim)")


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_decade(
    out_dir: str | Path,
    settings: DecadeSettings,
    *,
    device: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Train and score every family of ``settings`` into ``out_dir``; returns report.md.

    Raises:
        RunLocked: another process is writing ``out_dir``.
        MissingExtra: matplotlib or gensim is not installed (said before any work).
    """
    check_extras()
    with _decade_lock(Path(out_dir)):
        return _run_decade(
            Path(out_dir),
            settings,
            device=device,
            resume=resume,
            overwrite=overwrite,
            progress=progress,
        )


def _run_decade(
    out: Path,
    settings: DecadeSettings,
    *,
    device: str | None,
    resume: bool,
    overwrite: bool,
    progress: bool,
) -> Path:
    from textdecade.config import DataConfig
    from textdecade.data.opening import open_corpus
    from textdecade.pretrain.rundir import is_run_dir
    from textdecade.pretrain.trainer import Trainer
    from textdecade.tokenizer import Tokenizer

    settings.families = _check_families(settings.families)
    if settings.preset not in MIN_WORDS:
        raise UserError(f"unknown preset '{settings.preset}' (choose from: tiny, small, base)")
    plan = _open_plan(out, settings, resume, overwrite)
    settings = DecadeSettings(**plan["settings"])
    corpus = open_corpus(
        DataConfig(
            corpus=tuple(settings.corpus), dataset=settings.dataset, max_texts=settings.max_texts
        )
    )
    needed = MIN_WORDS[settings.preset]
    have = corpus.count_words(limit=needed)
    if have < needed:
        raise UserError(
            f"the corpus has {have:,} words; the {settings.preset} preset needs at least "
            f"{needed:,} (add text or choose a smaller preset)"
        )

    tokenizer_path = out / "tokenizer.json"
    if not tokenizer_path.exists():
        _say(f"decade: training the shared tokenizer ({VOCAB[settings.preset]} tokens)")
        Tokenizer.train(corpus, vocab_size=VOCAB[settings.preset]).save(tokenizer_path)

    per_family = split_overrides(settings.overrides, settings.families)
    started = time.perf_counter()
    runs = run_names(settings)
    for i, (family, k, name) in enumerate(runs, 1):
        state = plan["families"].setdefault(name, {})
        run_dir = out / "runs" / name
        tag = f"decade [{i}/{len(runs)}] {name}"
        if state.get("trained"):
            if is_run_dir(run_dir):
                _say(f"{tag}: trained already, skipping")
                continue
            # Deleting a family's run directory is how a user asks for it again.
            _say(f"{tag}: its run directory is gone; training it again")
            state.clear()
        config = _family_config(family, k, settings, per_family[family], tokenizer_path, device)
        budget = f"{settings.minutes:g} min" if settings.minutes else f"{config.train.steps} steps"
        elapsed = time.perf_counter() - started
        _say(f"{tag}: training ({budget}; {elapsed / 60:.1f} min so far)")
        t0 = time.perf_counter()
        # Further seeds train on seed 0's prepared data (hard links): same data, new seed.
        first = out / "runs" / family
        result = Trainer(
            config,
            run_dir,
            corpus=corpus,
            resume=is_run_dir(run_dir),
            progress=progress,
            data_from=first if k and not is_run_dir(run_dir) else None,
        ).fit()
        state.update(
            trained=True,
            family=family,
            seed=config.train.seed,
            seconds=state.get("seconds", 0.0) + time.perf_counter() - t0,
            step=result.step,
            n_params=result.n_params,
            unit=result.unit,
            units_seen=result.units_seen,
            flops=result.flops,
        )
        write_json(out / PLAN, plan)

    from textdecade.decade.report import score_all, write_report

    score_all(out, plan, corpus, settings, device=device, say=_say, progress=progress)
    write_json(out / PLAN, plan)
    return write_report(out, plan, settings)


def _family_config(family, k, settings, own, tokenizer_path, device):
    """The run config of ``family``'s seed ``k``: preset, decade budget, the user's
    overrides, then the time budget and the seed offset."""
    from textdecade.config import build_config
    from textdecade.models import get_family

    _, Config, presets = get_family(family)
    overrides = [
        f'tokenizer.path="{tokenizer_path}"',
        *BUDGET.get(settings.preset, {}).get(family, []),
        *own,
    ]
    if device:
        overrides.append(f'train.device="{device}"')
    if settings.minutes:
        overrides.append(f"train.minutes={settings.minutes}")
    config = build_config(family, Config, presets, settings.preset, None, overrides)
    if k:
        overrides.append(f"train.seed={config.train.seed + k}")
        config = build_config(family, Config, presets, settings.preset, None, overrides)
    return config


def sample_texts(corpus: Any, n: int) -> list[str]:
    """The first ``n`` texts of a corpus."""
    return list(itertools.islice(iter(corpus), n))
