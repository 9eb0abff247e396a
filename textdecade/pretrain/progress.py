"""What a run tells its user: the start banner, a progress bar, metrics.jsonl, TensorBoard."""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

METRICS_FILE = "metrics.jsonl"


class MetricsLog:
    """Append-only ``metrics.jsonl``; on resume, drops lines past the checkpoint's step."""

    def __init__(self, run_dir: Path, resume_step: int | None, tensorboard: bool = False):
        self.path = Path(run_dir) / METRICS_FILE
        if resume_step is not None and self.path.exists():
            kept = [
                line
                for line in self.path.read_text(encoding="utf-8").splitlines()
                if line.strip() and _step_of(line) <= resume_step
            ]
            self.path.write_text("".join(k + "\n" for k in kept), encoding="utf-8")
        elif resume_step is None:
            self.path.write_text("", encoding="utf-8")
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._tb = _tensorboard_writer(run_dir) if tensorboard else None

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tb is not None:
            step = record["step"]
            for key, value in record.items():
                if key != "step" and isinstance(value, int | float):
                    self._tb.add_scalar(key, value, step)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def _step_of(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
        return 1 << 62  # a torn last line from a kill: drop it


def _tensorboard_writer(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        warnings.warn(
            "--tensorboard: tensorboard is not installed (pip install tensorboard)", stacklevel=3
        )
        return None
    return SummaryWriter(str(Path(run_dir) / "tensorboard"))


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """All records of a run's ``metrics.jsonl`` (a torn last line is ignored)."""
    records = []
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return records
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def human(n: float) -> str:
    """1234567 -> '1.23M'."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:.0f}"


class ReadingBar:
    """A corpus whose every pass shows a bar of the texts read so far (tokenizer training,
    data preparation: minutes on a large corpus, silent before). Anything else the corpus
    offers (``count_words``, a parallel corpus's sides) is the corpus's own, unchanged.
    """

    def __init__(self, corpus: Any, desc: str, enabled: bool):
        self.corpus, self.desc, self.enabled = corpus, desc, enabled

    def __iter__(self):
        shown = tqdm(
            desc=self.desc,
            unit=" texts",
            unit_scale=True,
            disable=not self.enabled,
            file=sys.stderr,
            dynamic_ncols=True,
            mininterval=0.5,
        )
        return _Reading(iter(self.corpus), shown)

    def __getattr__(self, name: str) -> Any:
        if name in ("corpus", "desc", "enabled"):  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.corpus, name)


class _Reading:
    """One pass of a :class:`ReadingBar`. An iterator, not a generator: a native consumer
    (the tokenizer trainer) stopped by a signal must leave no suspended frame to finalize,
    and the CLI closes a bar left open before its error line."""

    def __init__(self, texts: Any, shown: Any):
        self.texts, self.shown = texts, shown

    def __iter__(self):
        return self

    def __next__(self) -> Any:
        try:
            text = next(self.texts)
        except StopIteration:
            self.shown.close()
            raise
        self.shown.update()
        return text


class Progress:
    """A tqdm bar with loss, throughput and ETA (silent on ranks other than 0)."""

    def __init__(self, total: int | None, initial: int, unit: str, enabled: bool):
        self.unit = unit
        self.bar = tqdm(
            total=total,
            initial=initial,
            desc="train",
            unit="step",
            disable=not enabled,
            file=sys.stderr,
            dynamic_ncols=True,
            mininterval=0.5,
        )
        self.start = time.perf_counter()

    def update(self, loss: float, rate: float, extra: str = "", steps: int = 1) -> None:
        """Advance by ``steps`` and show the latest loss and throughput."""
        self.bar.set_postfix_str(
            f"loss {loss:.4f} | {human(rate)} {self.unit}/s{extra}", refresh=False
        )
        self.bar.update(steps)

    def set_total(self, total: int) -> None:
        """The run's step count changed (a time budget fixed it)."""
        self.bar.total = total
        self.bar.refresh()

    def write(self, text: str) -> None:
        self.bar.write(text, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()
