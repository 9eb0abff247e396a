"""User-facing errors: the CLI prints them as one line on stderr and exits with code 2.

Anything a user can get wrong (a path, a config key, a file format, a word out of the
vocabulary) raises a subclass of :class:`UserError` with a message that says what to fix.
Everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno


class UserError(Exception):
    """A mistake in the user's input, explained in one line."""


class Interrupted(UserError):
    """A signal (Ctrl-C, SIGTERM) stopped the command; the CLI exits 130, not 2."""


class ConfigError(UserError, ValueError):
    """An unknown config key, a wrong type or an out-of-range value."""


class CorpusError(UserError):
    """A corpus that is missing, empty, binary or otherwise unreadable."""


class FormatError(UserError, ValueError):
    """A malformed input file (evaluation data, vectors, checkpoints); names the line."""


class CheckpointError(UserError):
    """A run directory that is partial, corrupt, or belongs to another family."""


class DiskFull(UserError):
    """The disk filled up while writing; what was there before is intact."""


class OutOfVocabulary(UserError, KeyError):
    """A word that is not in the vocabulary (and no subword backoff is available)."""

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return str(self.args[0]) if self.args else "word not in vocabulary"


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none): what a
    one-line error quotes of a library's multi-line one."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def is_disk_full(exc: BaseException) -> bool:
    """True when ``exc`` says the disk (or the user's quota) is full.

    safetensors reports it as its own error type carrying the OS error's text, not as an
    ``OSError``, so the text is read too.
    """
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    text = str(exc)
    return "No space left on device" in text or f"os error {errno.ENOSPC}" in text
