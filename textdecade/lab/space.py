"""The search space of ``textdecade lab search``: which settings a trial draws, from what.

A space maps a key (``d_model``, ``lr`` ...) to a :class:`Dimension`: a list of choices,
or a range (integers with a step, or a log-uniform rate). Each family has a default
space sized for the tiny budget; ``--space KEY=a,b,c`` or ``KEY=LOW:HIGH`` narrows it or
gives other values. Every combination a space can draw is checked up front (d_model must
divide by every n_heads it can meet), so a trial never draws a model that cannot be built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from textdecade.errors import UserError

#: key -> the config path it sets (``ffn_mult`` sets model.d_ff = ffn_mult x d_model).
KEYS = {
    "n_layers": "model.n_layers",
    "d_model": "model.d_model",
    "n_heads": "model.n_heads",
    "ffn_mult": "model.d_ff",
    "activation": "model.activation",
    "norm_type": "model.norm_type",
    "lr": "train.lr",
    "batch_size": "train.batch_size",
}
_INTEGER = ("n_layers", "d_model", "n_heads", "ffn_mult", "batch_size")


@dataclass(frozen=True)
class Dimension:
    """One key's values: ``choices``, or the range ``low..high`` (``step`` for integers,
    log-uniform for ``lr``)."""

    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    step: int | None = None

    def values(self) -> tuple[Any, ...]:
        """Every value an integer dimension can take (its choices, or its range)."""
        if self.choices:
            return self.choices
        if self.step is None:
            raise ValueError("a continuous range has no finite values")
        return tuple(range(int(self.low), int(self.high) + 1, self.step))

    def describe(self) -> str:
        """``a, b, c`` or ``low..high`` (how the report prints it)."""
        if self.choices:
            return ", ".join(f"{c:g}" if isinstance(c, float) else str(c) for c in self.choices)
        return f"{self.low:g}..{self.high:g}" + ("" if self.step is None else f" step {self.step}")

    def to_json(self) -> dict[str, Any]:
        """For the study's record (compared when a search resumes)."""
        if self.choices:
            return {"choices": list(self.choices)}
        return {"low": self.low, "high": self.high, "step": self.step}


def _d(*choices: Any) -> Dimension:
    return Dimension(tuple(choices))


_LR = Dimension(low=3e-4, high=1e-2)
#: Sized for the tiny budget (2,400 sequences a trial): up to ~1M parameters, so that a
#: trial takes seconds to half a minute on 2 CPU cores.
DEFAULT_SPACES: dict[str, dict[str, Dimension]] = {
    "gpt": {
        "n_layers": _d(1, 2, 3, 4, 6),
        "d_model": _d(32, 64, 96, 128),
        "n_heads": _d(2, 4),
        "ffn_mult": _d(2, 4),
        "activation": _d("gelu", "relu", "silu"),
        "norm_type": _d("layernorm", "rmsnorm"),
        "lr": _LR,
        "batch_size": _d(4, 8, 16),
    },
    "bert": {
        "n_layers": _d(1, 2, 3, 4),
        "d_model": _d(32, 64, 96, 128),
        "n_heads": _d(2, 4),
        "ffn_mult": _d(2, 4),
        "activation": _d("gelu", "relu", "silu"),
        "norm_type": _d("layernorm", "rmsnorm"),
        "lr": _LR,
        "batch_size": _d(4, 8, 16),
    },
    "transformer": {
        "n_layers": _d(1, 2, 3),
        "d_model": _d(32, 64, 96, 128),
        "n_heads": _d(2, 4),
        "ffn_mult": _d(2, 4),
        "activation": _d("relu", "gelu"),
        "norm_type": _d("layernorm", "rmsnorm"),
        "lr": _LR,
        "batch_size": _d(4, 8, 16),
    },
}


def _number(key: str, text: str) -> float | int:
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"--space {key}: '{text}' is not a number") from None
    if key in _INTEGER:
        if value != int(value) or value < 1:
            raise UserError(f"--space {key}: '{text}' is not a positive integer")
        return int(value)
    if not math.isfinite(value) or value <= 0:
        raise UserError(f"--space {key}: '{text}' is not a positive number")
    return value


def parse_dimension(key: str, text: str) -> Dimension:
    """``a,b,c`` (choices; one value fixes the key) or ``LOW:HIGH`` (a range)."""
    if key not in KEYS:
        raise UserError(f"--space: unknown key '{key}' (choose from: {', '.join(KEYS)})")
    if ":" in text:
        if key in ("activation", "norm_type"):
            raise UserError(f"--space {key}: a range needs numbers; give choices as a,b,c")
        low, high = (_number(key, part) for part in text.split(":", 1))
        if low >= high:
            raise UserError(f"--space {key}: the range {text} is empty (LOW must be < HIGH)")
        return Dimension(low=low, high=high, step=1 if key in _INTEGER else None)
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise UserError(f"--space {key}: no values given")
    if key in ("activation", "norm_type"):
        return Dimension(tuple(parts))
    return Dimension(tuple(_number(key, p) for p in parts))


def build_space(family: str, entries: dict[str, str]) -> dict[str, Dimension]:
    """The family's default space with ``entries`` (``--space`` key -> text) replacing
    its dimensions; checked so that every draw builds."""
    space = dict(DEFAULT_SPACES[family])
    for key, text in entries.items():
        space[key] = parse_dimension(key, text)
    return _check_heads(space)


def _check_heads(space: dict[str, Dimension]) -> dict[str, Dimension]:
    """d_model must divide by every n_heads: a d_model range steps by their least common
    multiple, and listed widths must all be multiples of it (one line naming the pair)."""
    heads = space["n_heads"].values()
    lcm = math.lcm(*heads)
    width = space["d_model"]
    if not width.choices:
        low = math.ceil(width.low / lcm) * lcm
        if low > width.high:
            raise UserError(
                f"--space d_model={width.low:g}:{width.high:g} holds no multiple of every "
                f"n_heads ({', '.join(map(str, heads))})"
            )
        space["d_model"] = Dimension(low=low, high=width.high, step=lcm)
        return space
    for d in width.choices:
        for h in heads:
            if d % h:
                raise UserError(
                    f"--space: d_model {d} is not divisible by n_heads {h}; give widths "
                    f"that are multiples of {lcm}"
                )
    return space


def suggest(trial, space: dict[str, Dimension]) -> dict[str, Any]:
    """Draw one value of every key from an Optuna trial."""
    params = {}
    for key, dim in space.items():
        if dim.choices:
            params[key] = trial.suggest_categorical(key, list(dim.choices))
        elif dim.step is not None:
            params[key] = trial.suggest_int(key, int(dim.low), int(dim.high), step=dim.step)
        else:
            params[key] = trial.suggest_float(key, dim.low, dim.high, log=True)
    return params


def overrides(params: dict[str, Any]) -> list[str]:
    """The ``--set`` overrides that give a run ``params``."""
    out = []
    for key, value in params.items():
        if key == "ffn_mult":
            value = value * params["d_model"]
        out.append(f"{KEYS[key]}={value!r}" if isinstance(value, str) else f"{KEYS[key]}={value}")
    return [o.replace("'", '"') for o in out]


def space_to_json(space: dict[str, Dimension]) -> dict[str, Any]:
    """The space as plain data (saved with the study)."""
    return {key: dim.to_json() for key, dim in space.items()}
