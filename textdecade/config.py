"""Typed, frozen run configuration: defaults, presets, TOML recipes and ``--set`` overrides.

A run is described by one :class:`RunConfig`: the family's model hyperparameters plus the
shared training, data and tokenizer settings. It is built in layers, each overriding the
last: dataclass defaults, the family's preset (``tiny``, ``small``, ``base``), a TOML
recipe, then dotted ``--set section.key=value`` overrides. Unknown keys and wrong types are
:class:`~textdecade.errors.ConfigError` s that name the key and the allowed ones.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textdecade.errors import ConfigError, first_line

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PRESETS = ("tiny", "small", "base")
PARALLEL = ("ddp", "fsdp")  # train.parallel: how torchrun ranks share the model
# The names the builders accept. They live here, the lowest floor, so that a config is
# checked when it is built (before any work starts) against the very tuples that
# pretrain.optim, pretrain.schedules, pretrain.device and the tokenizer dispatch on.
OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam", "adamw", "adagrad")
SCHEDULES = ("cosine", "linear", "noam", "constant")
DTYPES = ("auto", "fp32", "bf16", "fp16")
TOKENIZER_BACKENDS = ("bpe", "sentencepiece")
TOKENIZER_MODEL_TYPES = ("bpe", "unigram")
_DEVICE_RE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


@dataclass(frozen=True)
class Rule:
    """A check on one config value and the words that say what it allows."""

    test: Callable[[Any], bool]
    allowed: str


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    # NaN and infinity slip through comparisons (or poison training) without this.
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


POSITIVE_INT = Rule(lambda v: _is_int(v) and v > 0, "a positive integer")
NON_NEGATIVE_INT = Rule(lambda v: _is_int(v) and v >= 0, "a non-negative integer")
POSITIVE = Rule(lambda v: _is_number(v) and v > 0, "a positive number")
NON_NEGATIVE = Rule(lambda v: _is_number(v) and v >= 0, "a non-negative number")
NON_EMPTY = Rule(lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string")
FRACTION = Rule(lambda v: _is_number(v) and 0 <= v <= 1, "a number in [0, 1]")
BETA = Rule(lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)")


# Only the spelling: whether the machine has the device is select_device's job.
DEVICE = Rule(
    lambda v: isinstance(v, str) and _DEVICE_RE.fullmatch(v) is not None,
    "auto, cpu, cuda, cuda:N or mps",
)


def check_device(name: Any) -> str:
    """Return ``name`` if it spells a device (``auto | cpu | cuda | cuda:N | mps``).

    The one check behind ``train.device``, ``--device`` and the API's ``device=``.

    Raises:
        ConfigError: any other name.
    """
    if not DEVICE.test(name):
        raise ConfigError(f"unknown device {name!r} (use {DEVICE.allowed})")
    return name


def one_of(choices: tuple[str, ...]) -> Rule:
    """The value must be one of ``choices``."""
    return Rule(lambda v: v in choices, "one of " + ", ".join(choices))


def optional(rule: Rule, unset: str) -> Rule:
    """``rule``, or None; ``unset`` says what None means."""
    return Rule(lambda v: v is None or rule.test(v), f"{rule.allowed}, or unset for {unset}")


def check_fields(section: str, obj: Any, rules: dict[str, Rule]) -> None:
    """Raise ConfigError naming the first field of ``obj`` that breaks its rule.

    The message names the key, the allowed values and the value given, e.g.
    ``train.batch_size must be a positive integer (got 0)``.
    """
    for name, rule in rules.items():
        value = getattr(obj, name)
        if not rule.test(value):
            raise ConfigError(f"{section}.{name} must be {rule.allowed} (got {value!r})")


@dataclass(frozen=True)
class TokenizerConfig:
    """The shared tokenizer: trained on the run's corpus unless ``path`` names one."""

    vocab_size: int = 8000
    backend: str = "bpe"  # "bpe" (HF tokenizers, byte-level) or "sentencepiece"
    model_type: str = "bpe"  # sentencepiece only: "bpe" or "unigram"
    min_frequency: int = 2
    lowercase: bool = False
    path: str | None = None  # an existing tokenizer.json to reuse
    # Texts read to train it (enough for a stable vocabulary); 0 or None: all of them. 0 is
    # kept because a --set or TOML recipe has no way to write None.
    max_texts: int | None = 200_000

    def __post_init__(self) -> None:
        check_fields(
            "tokenizer",
            self,
            {
                "vocab_size": POSITIVE_INT,
                "backend": one_of(TOKENIZER_BACKENDS),
                "model_type": one_of(TOKENIZER_MODEL_TYPES),
                "min_frequency": POSITIVE_INT,
                "path": optional(NON_EMPTY, "training one on the corpus"),
                "max_texts": Rule(
                    lambda v: v is None or NON_NEGATIVE_INT.test(v),
                    "a non-negative integer (0 or unset: all texts)",
                ),
            },
        )


@dataclass(frozen=True)
class DataConfig:
    """Where the text comes from. With no corpus and no dataset, the built-in sample."""

    corpus: tuple[str, ...] = ()  # files, directories or globs (.txt .jsonl .parquet, compressed)
    dataset: str | None = None  # a HF datasets name, "NAME" or "NAME:CONFIG"
    split: str = "train"
    text_field: str = "text"
    source: str | None = None  # parallel corpora: source-side file
    target: str | None = None  # parallel corpora: target-side file
    max_texts: int | None = None  # read at most this many texts
    # The validation split is the family's own setting (e.g. model.valid_fraction), since
    # what is held out (documents, sentence pairs, co-occurrences) differs by family.

    def __post_init__(self) -> None:
        check_fields(
            "data",
            self,
            {
                "corpus": Rule(lambda v: all(NON_EMPTY.test(p) for p in v), "non-empty paths"),
                "dataset": optional(NON_EMPTY, "files or the built-in sample"),
                "split": NON_EMPTY,
                "text_field": NON_EMPTY,
                "source": optional(NON_EMPTY, "no parallel corpus"),
                "target": optional(NON_EMPTY, "a tab-separated source file"),
                "max_texts": optional(POSITIVE_INT, "all texts"),
            },
        )
        if self.target and not self.source:
            # A target alone names half a parallel corpus; source alone may be a TSV of pairs.
            raise ConfigError(
                f"data.target ({self.target!r}) needs data.source too (--source FILE)"
            )


@dataclass(frozen=True)
class TrainConfig:
    """How the engine trains, the same for every family."""

    steps: int = 1000
    # Passes over the data instead of a step count (gensim's ``epochs``): the engine turns
    # them into steps once the data is prepared and its size known; None keeps ``steps``.
    epochs: float | None = None
    # A wall-clock budget instead of a step count: the engine measures its step rate over
    # the first few steps, then fixes the step count that fills the budget (saved in
    # checkpoints, so a resume keeps it); None keeps ``steps`` (or ``epochs``).
    minutes: float | None = None
    batch_size: int = 32
    grad_accum: int = 1
    lr: float = 3e-4
    min_lr_ratio: float = 0.1  # the schedule decays to lr * min_lr_ratio
    optimizer: str | None = None  # one of OPTIMIZERS; None: the family's default
    schedule: str | None = None  # one of SCHEDULES; None: the family's default
    warmup_steps: int = 100
    weight_decay: float = 0.1  # of matrices only: decoupled in adamw, an L2 term elsewhere
    beta1: float = 0.9  # Adam's first-moment decay; the momentum of "momentum"
    beta2: float = 0.95  # Adam's second-moment decay; RMSProp's squared-gradient decay
    clip: float = 1.0  # gradient norm clipping; 0 turns it off
    seed: int = 1337
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    dtype: str = "auto"  # auto (bf16 autocast on GPU, fp32 on CPU) | fp32 | bf16 | fp16
    compile: bool = False  # torch.compile the model (Word2Vec, GloVe: their sparse update)
    eval_every: int = 200  # 0 turns evaluation off (none at the end either)
    eval_batches: int = 20
    ckpt_every: int = 200
    keep_last: int = 2
    log_every: int = 10
    tensorboard: bool = False
    threads: int | None = None  # torch intra-op threads on CPU; None leaves torch's default
    parallel: str = "ddp"  # under torchrun: ddp (replicas) | fsdp (sharded; block models only)
    # Per-block gradient norms and activation statistics in metrics.jsonl, on the first step
    # and every N steps (pretrain/diagnostics.py); 0 turns them off.
    diagnostics_every: int = 0

    def __post_init__(self) -> None:
        check_fields("train", self, _TRAIN_RULES)
        if self.diagnostics_every and self.parallel == "fsdp":
            # Each rank holds a shard of every gradient: a block's norm would be a shard's.
            raise ConfigError("train.diagnostics_every needs whole gradients: use parallel=ddp")


_TRAIN_RULES = {
    "steps": POSITIVE_INT,
    "epochs": optional(POSITIVE, "train.steps"),
    "minutes": optional(POSITIVE, "train.steps"),
    "batch_size": POSITIVE_INT,
    "grad_accum": POSITIVE_INT,
    "lr": POSITIVE,
    "min_lr_ratio": FRACTION,
    "optimizer": optional(one_of(OPTIMIZERS), "the family's default"),
    "schedule": optional(one_of(SCHEDULES), "the family's default"),
    "warmup_steps": NON_NEGATIVE_INT,
    "weight_decay": NON_NEGATIVE,
    "beta1": BETA,
    "beta2": BETA,
    "clip": NON_NEGATIVE,
    "seed": Rule(_is_int, "an integer"),
    "device": DEVICE,
    "dtype": one_of(DTYPES),
    "eval_every": Rule(NON_NEGATIVE_INT.test, "a non-negative integer, 0 for no evaluation"),
    "eval_batches": POSITIVE_INT,
    "ckpt_every": POSITIVE_INT,
    "keep_last": POSITIVE_INT,
    "log_every": POSITIVE_INT,
    # 0 used to mean "torch's default" by accident (a truthiness test); None says that.
    "threads": optional(POSITIVE_INT, "torch's default"),
    "parallel": one_of(PARALLEL),
    "diagnostics_every": Rule(NON_NEGATIVE_INT.test, "a non-negative integer, 0 for none"),
}


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run; saved as ``config.json`` in the run directory."""

    family: str
    model: Any
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (tuples become lists)."""
        return {"family": self.family, **{k: _asdict(getattr(self, k)) for k in _SECTIONS}}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)


_SECTIONS = ("model", "train", "data", "tokenizer")


def _asdict(obj: Any) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(obj)))


def _section_types(model_cls: type) -> dict[str, type]:
    return {
        "model": model_cls,
        "train": TrainConfig,
        "data": DataConfig,
        "tokenizer": TokenizerConfig,
    }


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``update`` into a copy of ``base``."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check (and gently convert) ``value`` to the annotated type ``hint``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        item = args[0] if args else Any
        return tuple(_coerce(v, item, key) for v in value)
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                return float(value)
            except OverflowError:  # an integer past float's range (TOML ints are unbounded)
                raise ConfigError(f"{key} must be a number within float range") from None
        raise ConfigError(f"{key} must be a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key} must be a string, got {value!r}")
    return value


def from_dict(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass ``cls`` from ``values``, rejecting unknown keys and wrong types."""
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a table, got {values!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        # a section may say why it lacks a key other families have (seq2seq: no norm)
        why = getattr(cls, "UNSUPPORTED", {}).get(unknown[0])
        if why:
            raise ConfigError(f"{prefix}{unknown[0]}: {why}")
        # repr: a key may hold any character (TOML's quoted keys, --set text), newlines too
        raise ConfigError(
            f"unknown config key {prefix + unknown[0]!r} (allowed: {', '.join(names)})"
        )
    kwargs = {k: _coerce(v, hints[k], prefix + k) for k, v in values.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise  # __post_init__'s own message already names the key
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{prefix.rstrip('.')}: {exc}") from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``a.b=value``: the value is read as TOML (numbers, booleans, lists), else a string."""
    if "=" not in text:
        raise ConfigError(f"--set expects section.key=value, got {text!r}")
    key, raw = text.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"--set expects section.key=value, got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    except (ValueError, RecursionError):  # an int past 4300 digits, nesting too deep
        raise ConfigError(
            f"--set {key.strip()!r}: value is a number past 4300 digits or nested too deep"
        ) from None
    return path, value


def _nest(path: list[str], value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {path[-1]: value}
    for part in reversed(path[:-1]):
        out = {part: out}
    return out


def read_recipe(path: str | Path) -> dict[str, Any]:
    """Read a TOML recipe; a missing or malformed file is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({first_line(exc)})") from None
    except (ValueError, RecursionError):  # an int past 4300 digits, nesting too deep
        raise ConfigError(f"{path}: a number past 4300 digits or nesting too deep") from None


def build_config(
    family: str,
    model_cls: type,
    presets: dict[str, dict[str, Any]],
    preset: str = "tiny",
    recipe: str | Path | dict[str, Any] | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    settings: dict[str, dict[str, Any]] | None = None,
) -> RunConfig:
    """Layer defaults, ``presets[preset]``, a recipe, ``--set`` overrides and typed
    ``settings`` into a RunConfig.

    Args:
        family: the family name (written into the config).
        model_cls: the family's model Config dataclass.
        presets: the family's presets, ``{"tiny": {"model": {...}, "train": {...}}, ...}``.
        preset: which preset to start from.
        recipe: a TOML file (or an already-read dict) with the same sections.
        overrides: ``section.key=value`` strings; a bare ``key=value`` whose key belongs to
            exactly one section is accepted too.
        settings: ``{section: {key: value}}`` already typed (the CLI's own flags, such as
            ``--device``), applied last and checked like the rest.
    """
    if preset not in presets:
        raise ConfigError(f"unknown preset '{preset}' (allowed: {', '.join(presets)})")
    values: dict[str, Any] = merge({}, presets[preset])
    if recipe is not None:
        recipe_values = recipe if isinstance(recipe, dict) else read_recipe(recipe)
        recipe_values = {k: v for k, v in recipe_values.items() if k != "family"}
        values = merge(values, recipe_values)
    sections = _section_types(model_cls)
    for text in overrides:
        path, value = parse_override(text)
        if path[0] not in sections:
            owners = [s for s, c in sections.items() if path[0] in _field_names(c)]
            if len(path) == 1 and len(owners) == 1:
                path = [owners[0], *path]
            else:
                raise ConfigError(
                    f"unknown config section {path[0]!r} in --set {text!r} "
                    f"(allowed: {', '.join(sections)})"
                )
        values = merge(values, _nest(path, value))
    values = merge(values, settings or {})
    unknown = sorted(set(values) - set(sections))
    if unknown:
        raise ConfigError(f"unknown config section {unknown[0]!r} (allowed: {', '.join(sections)})")
    built = {
        name: from_dict(cls, values.get(name, {}), name + ".") for name, cls in sections.items()
    }
    return RunConfig(family=family, **built)


def _field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def nest_flat_settings(model_cls: type, flat: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"d_model": 100, "epochs": 5}`` -> ``{"model": {"d_model": 100}, "train":
    {"epochs": 5}}``: each bare key goes to the one section of a run config that has it
    (as a bare ``--set key=value`` does).

    Raises:
        ConfigError: a key no section has, or one that several have (say which).
    """
    sections = _section_types(model_cls)
    nested: dict[str, dict[str, Any]] = {}
    for key, value in flat.items():
        owners = [s for s, c in sections.items() if key in _field_names(c)]
        if len(owners) != 1:
            where = f"is in {' and '.join(owners)}" if owners else "is in no config section"
            raise ConfigError(f"setting {key!r} {where}; pass settings={{section: {{...}}}}")
        nested.setdefault(owners[0], {})[key] = value
    return nested


# Keys that moved since a run directory may have been written: (old section, key) -> the
# section that holds it now. Older run directories then still load and resume.
_MOVED_KEYS = {("data", "valid_fraction"): "model"}


def _upgrade(data: dict[str, Any], model_cls: type) -> dict[str, Any]:
    """Move keys an older version saved elsewhere; drop them where the family has none."""
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for (old, key), new in _MOVED_KEYS.items():
        section = data.get(old)
        if not isinstance(section, dict) or key not in section:
            continue
        value = section.pop(key)
        target_cls = _section_types(model_cls)[new]
        if key in _field_names(target_cls):
            data.setdefault(new, {}).setdefault(key, value)
    return data


def config_from_json(data: dict[str, Any], model_cls: type) -> RunConfig:
    """Rebuild a RunConfig saved by :meth:`RunConfig.to_dict` (or by an older version)."""
    data = _upgrade(data, model_cls)
    sections = _section_types(model_cls)
    built = {name: from_dict(cls, data.get(name, {}), name + ".") for name, cls in sections.items()}
    return RunConfig(family=data["family"], **built)
