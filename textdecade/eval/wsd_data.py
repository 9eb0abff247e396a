"""Readers of homograph data: CoarseWSD-20, sense-labelled TSV (the built-in suite), WiC.

- CoarseWSD-20 (Loureiro et al. 2021): one folder per word with ``classes_map.txt``
  (JSON class id -> sense), ``{train,test}.data.txt`` (``index<TAB>tokenized sentence``)
  and ``{train,test}.gold.txt`` (one class id per line).
- Sense TSV: ``word<TAB>sense<TAB>index<TAB>sentence`` (CoarseWSD-20's out-of-domain file,
  and textdecade's built-in suite), optionally a fifth ``release`` field (an integer; the
  built-in suite's release 1 is its first 192 sentences); ``#`` lines are comments.
- WiC (Pilehvar & Camacho-Collados 2019): ``word<TAB>pos<TAB>i1-i2<TAB>sentence1<TAB>
  sentence2`` and a gold file of ``T``/``F`` lines (``x.data.txt`` beside ``x.gold.txt``).

Every malformed line raises :class:`~textdecade.errors.FormatError` naming file and line.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path

from textdecade.errors import FormatError
from textdecade.io import read_text

__all__ = [
    "Instance",
    "WordTask",
    "WicPair",
    "builtin_suite_path",
    "cap_per_sense",
    "read_coarsewsd",
    "read_sense_tsv",
    "read_wic",
]


@dataclass(frozen=True)
class Instance:
    """One occurrence of a target: the sentence's whitespace words and the target index."""

    words: tuple[str, ...]
    index: int
    sense: str


@dataclass
class WordTask:
    """All instances of one homograph; ``senses`` ordered most frequent (in train) first."""

    word: str
    train: list[Instance] = field(default_factory=list)
    test: list[Instance] = field(default_factory=list)
    senses: list[str] = field(default_factory=list)

    def order_senses(self, known: list[str] | None = None) -> None:
        """Order senses by train frequency, ties by ``known`` order (class 0 first)."""
        counts = Counter(x.sense for x in self.train)
        listed = list(dict.fromkeys([*(known or []), *counts, *(x.sense for x in self.test)]))
        self.senses = sorted(listed, key=lambda s: (-counts[s], listed.index(s)))


@dataclass(frozen=True)
class WicPair:
    """A WiC item: the target in two sentences; ``same`` is the gold label (None if unknown)."""

    word: str
    first: Instance
    second: Instance
    same: bool | None


def builtin_suite_path() -> Path:
    """The built-in homograph suite (sentences written for textdecade), a sense TSV."""
    return Path(__file__).parent / "data" / "homographs.tsv"


def _instance(words: list[str], index: str, sense: str, where: str) -> Instance:
    try:
        i = int(index)
    except ValueError:
        raise FormatError(f"{where}: target index {index!r} is not a number") from None
    if not 0 <= i < len(words):
        raise FormatError(f"{where}: target index {i} outside a sentence of {len(words)} words")
    return Instance(tuple(words), i, sense)


def cap_per_sense(instances: list[Instance], max_per_sense: int | None) -> list[Instance]:
    """The first ``max_per_sense`` instances of each sense, in file order (None: all)."""
    if max_per_sense is None:
        return instances
    taken: Counter[str] = Counter()
    out = []
    for x in instances:
        if taken[x.sense] < max_per_sense:
            taken[x.sense] += 1
            out.append(x)
    return out


def _read_split(folder: Path, split: str, classes: dict[str, str]) -> list[Instance]:
    data, gold = folder / f"{split}.data.txt", folder / f"{split}.gold.txt"
    if not data.is_file() or not gold.is_file():
        raise FormatError(f"{folder}: missing {data.name} or {gold.name}")
    data_lines, gold_lines = read_text(data).splitlines(), read_text(gold).splitlines()
    if len(data_lines) != len(gold_lines):
        raise FormatError(
            f"{gold}:{min(len(data_lines), len(gold_lines)) + 1}: {len(gold_lines)} gold "
            f"labels for {len(data_lines)} sentences"
        )
    out = []
    for n, (line, label) in enumerate(zip(data_lines, gold_lines), 1):
        index, _, sentence = line.partition("\t")
        if not sentence:
            raise FormatError(f"{data}:{n}: expected 'index<TAB>sentence'")
        if label.strip() not in classes:
            raise FormatError(f"{gold}:{n}: class {label.strip()!r} not in classes_map.txt")
        out.append(_instance(sentence.split(), index, classes[label.strip()], f"{data}:{n}"))
    return out


def _read_classes(file: Path) -> dict[str, str]:
    """``classes_map.txt``: a JSON object from class ids (integers) to sense names."""
    try:
        classes = json.loads(read_text(file))
    except json.JSONDecodeError as exc:
        raise FormatError(f"{file}:{exc.lineno}: not JSON") from None
    except (ValueError, RecursionError):  # an int past 4300 digits, nesting too deep
        raise FormatError(f"{file}: not readable JSON (a huge number or deep nesting)") from None
    if not isinstance(classes, dict):
        raise FormatError(f"{file}: expected a JSON object of class id -> sense")
    for key, sense in classes.items():
        try:
            int(key)  # the ids order the senses (class 0 first)
        except ValueError:
            raise FormatError(f"{file}: class id {key[:40]!r} is not a number") from None
        if not isinstance(sense, str):
            raise FormatError(f"{file}: class {key!r} names a {type(sense).__name__}, not a sense")
    return classes


def read_coarsewsd(
    root: str | Path,
    words: list[str] | None = None,
    max_per_sense: int | None = None,
    max_test_per_sense: int | None = None,
) -> list[WordTask]:
    """Read CoarseWSD-20 (or any folder of per-word folders in its layout).

    Args:
        root: the dataset folder.
        words: a subset of its words (all when None).
        max_per_sense: keep at most this many train instances per sense (speed).
        max_test_per_sense: keep at most this many test instances per sense (speed; the
            test distribution changes, and the MFS baseline with it).
    """
    root = Path(root)
    folders = sorted(p.parent for p in root.glob("*/classes_map.txt"))
    if not folders:
        raise FormatError(f"{root}: no <word>/classes_map.txt folders (CoarseWSD-20 layout)")
    by_word = {f.name: f for f in folders}
    if words:
        missing = [w for w in words if w not in by_word]
        if missing:
            raise FormatError(f"{root}: no folder for {missing}; it has {sorted(by_word)}")
    tasks = []
    for word in words or sorted(by_word):
        folder = by_word[word]
        classes = _read_classes(folder / "classes_map.txt")
        task = WordTask(
            word,
            cap_per_sense(_read_split(folder, "train", classes), max_per_sense),
            cap_per_sense(_read_split(folder, "test", classes), max_test_per_sense),
        )
        task.order_senses([classes[k] for k in sorted(classes, key=int)])
        tasks.append(task)
    return tasks


def read_sense_tsv(path: str | Path | None = None, release: int | None = None) -> list[WordTask]:
    """Read ``word<TAB>sense<TAB>index<TAB>sentence[<TAB>release]`` lines, one task per word.

    Every instance goes to ``train`` (the suite is scored leave-one-out).

    Args:
        path: a sense TSV; None reads the built-in suite.
        release: keep only rows of this release or earlier (a row without the fifth field
            counts as release 1); ``release=1`` on the built-in suite gives its first 192
            sentences, the suite that older scores were measured on. None keeps every row.
    """
    path = builtin_suite_path() if path is None else Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such homograph file")
    tasks: dict[str, WordTask] = {}
    with StringIO(read_text(path)) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) not in (4, 5):
                raise FormatError(
                    f"{path}:{n}: expected 'word<TAB>sense<TAB>index<TAB>sentence' and an "
                    f"optional '<TAB>release', found {len(parts)} fields"
                )
            word, sense, index, sentence = parts[:4]
            row_release = 1
            if len(parts) == 5:
                try:
                    row_release = int(parts[4])
                except ValueError:
                    raise FormatError(f"{path}:{n}: release {parts[4]!r} is not a number") from None
            x = _instance(sentence.split(), index, sense, f"{path}:{n}")
            if release is None or row_release <= release:
                tasks.setdefault(word, WordTask(word)).train.append(x)
    if not tasks:
        kept = "" if release is None else f" of release {release} or earlier"
        raise FormatError(f"{path}: no instances{kept} in the file")
    for task in tasks.values():
        task.order_senses()
    return list(tasks.values())


def read_wic(data: str | Path, gold: str | Path | None = None) -> list[WicPair]:
    """Read a WiC data file and its gold file (``x.data.txt`` -> ``x.gold.txt``).

    Raises:
        FormatError: a malformed line (file:line), or a gold file of another length.
    """
    data = Path(data)
    if gold is None:
        name = data.name.replace(".data.", ".gold.")
        gold = data.with_name(name) if name != data.name else None
    labels: list[bool | None] | None = None
    if gold is not None and Path(gold).is_file():
        labels = []
        for n, line in enumerate(read_text(gold).splitlines(), 1):
            if line.strip() not in ("T", "F"):
                raise FormatError(f"{gold}:{n}: expected T or F, found {line.strip()!r}")
            labels.append(line.strip() == "T")
    if not data.is_file():
        raise FormatError(f"{data}: no such WiC file")
    pairs = []
    for n, line in enumerate(read_text(data).splitlines(), 1):
        parts = line.split("\t")
        if len(parts) != 5:
            raise FormatError(
                f"{data}:{n}: expected 'word<TAB>pos<TAB>i1-i2<TAB>sentence1<TAB>sentence2'"
            )
        word, _pos, idx, s1, s2 = parts
        i1, sep, i2 = idx.partition("-")
        if not sep:
            raise FormatError(f"{data}:{n}: indices {idx!r} must look like '3-7'")
        where = f"{data}:{n}"
        a, b = _instance(s1.split(), i1, "", where), _instance(s2.split(), i2, "", where)
        pairs.append(WicPair(word, a, b, None))
    if labels is not None:
        if len(labels) != len(pairs):
            raise FormatError(f"{gold}: {len(labels)} labels for {len(pairs)} pairs in {data}")
        pairs = [WicPair(p.word, p.first, p.second, y) for p, y in zip(pairs, labels)]
    return pairs
