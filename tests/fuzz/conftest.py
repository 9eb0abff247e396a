"""Shared pieces of the fuzz suite: bounded, reproducible settings and the one property.

The property of every reader a user's file goes through: any input gives a result or one
:class:`~textdecade.errors.UserError` whose message is a single line; any other exception
is a bug and fails the example (hypothesis then shrinks it to the smallest input).
"""

from __future__ import annotations

import tempfile
import tracemalloc
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from textdecade.errors import UserError


def fuzz(n: int = 60):
    """Settings of one fuzz test: ``n`` examples, derandomized (CI sees the same inputs)."""
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def result_or_user_error(call: Callable[[], Any]) -> Any:
    """``call()``'s result, or the UserError it raised (checked to be one non-empty line);
    anything else propagates and fails the example."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CorpusWarning and friends are allowed, not errors
        try:
            return call()
        except UserError as exc:
            message = str(exc)
            assert message and "\n" not in message, f"not one line: {message!r}"
            return exc


@contextmanager
def scratch() -> Iterator[Path]:
    """A fresh directory per example (pytest's tmp_path is per test, not per example)."""
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


def peak_python_bytes(call: Callable[[], Any]) -> tuple[Any, int]:
    """(what :func:`result_or_user_error` gives, peak bytes Python and numpy allocated)."""
    tracemalloc.start()
    try:
        out = result_or_user_error(call)
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


#: Text a hostile file is made of: any code point (surrogates excluded: not encodable).
any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=200)

#: Lines of text, some empty, some long, some with NUL or control characters.
text_lines = st.lists(
    st.one_of(any_text, st.just(""), st.just("\x00"), st.text("ab \t\r", min_size=5000)),
    max_size=8,
)


def joined(lines: list[str]) -> bytes:
    """The UTF-8 bytes of ``lines``, newline-separated."""
    return "\n".join(lines).encode("utf-8")


#: File bytes: random, or text lines, or text with invalid UTF-8 spliced in.
file_bytes = st.one_of(
    st.binary(max_size=600),
    text_lines.map(joined),
    st.tuples(text_lines.map(joined), st.binary(min_size=1, max_size=8)).map(
        lambda p: p[0][: len(p[0]) // 2] + p[1] + p[0][len(p[0]) // 2 :]
    ),
)
