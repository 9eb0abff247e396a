"""The built-in sample corpus: ~0.47M words of English from gensim's installed test data.

``Corpus()`` with no arguments reads it, so every command works out of the box. The text
is NOT shipped with textdecade: it is assembled at run time from files in the installed
gensim wheel (``gensim/test/test_data``), namely the Lee news corpus
(``lee_background.cor`` + ``lee.cor``, one document per line) and the shortened Wikipedia
dump ``enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2``, cleaned
with ``gensim.corpora.wikicorpus`` (``extract_pages`` + ``filter_wiki``) into paragraphs
of at least 8 words. The result is cached once under ``$XDG_CACHE_HOME/textdecade``
(default ``~/.cache/textdecade``), written atomically.
"""

from __future__ import annotations

import bz2
import os
import re
from collections.abc import Iterator
from pathlib import Path

from textdecade.extras import check, require
from textdecade.io import atomic_path

from ..errors import CorpusError

SAMPLE_VERSION = 1
_LEE = ("lee_background.cor", "lee.cor")
_WIKI = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
_MIN_WORDS = 8
# Lines that are list items, headings, table rows or template leftovers, not prose.
_NOT_PROSE = re.compile(r"^\s*(?:[*#:;|!{}=]|\[\[|thumb\|)")


def cache_dir() -> Path:
    """textdecade's cache directory (``$XDG_CACHE_HOME/textdecade`` or ``~/.cache/...``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "textdecade"


#: What the built-in sample is needed for, in the one line of a missing gensim.
PURPOSE = "the built-in sample corpus (used when no --corpus or --dataset is given)"


def _gensim_test_data() -> Path:
    gensim = require("gensim", PURPOSE)
    path = Path(gensim.__file__).parent / "test" / "test_data"
    if not (path / _WIKI).is_file():
        raise CorpusError(
            f"gensim's test data is missing ({path}); reinstall gensim or pass a corpus"
        )
    return path


def sample_texts() -> Iterator[str]:
    """Yield the sample's texts (Lee documents, then Wikipedia paragraphs), uncached."""
    data = _gensim_test_data()
    wikicorpus = require("gensim.corpora.wikicorpus", PURPOSE)
    extract_pages, filter_wiki = wikicorpus.extract_pages, wikicorpus.filter_wiki
    for name in _LEE:
        with open(data / name, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = " ".join(line.split())
                if line:
                    yield line
    with bz2.open(data / _WIKI, "rb") as f:
        for _title, raw, _pageid in extract_pages(f, filter_namespaces=("0",)):
            for para in filter_wiki(raw).split("\n"):
                if _NOT_PROSE.match(para) or "|" in para:  # "|" = markup leftovers
                    continue
                para = " ".join(para.split())
                if len(para.split()) >= _MIN_WORDS:
                    yield para


def _cached() -> Path:
    return cache_dir() / f"sample_v{SAMPLE_VERSION}.txt"


def check_sample() -> None:
    """Refuse now, before any work, when the sample is neither cached nor buildable (gensim,
    the ``gensim`` extra, is not installed): one line naming the extra.

    Raises:
        MissingExtra: gensim is missing and the sample was never built here.
    """
    if not _cached().is_file():
        check("gensim", PURPOSE)


def sample_path() -> Path:
    """Path of the cached sample corpus (built on first use), one text per line.

    Raises:
        MissingExtra: it must be built and gensim is not installed.
    """
    path = _cached()
    if path.is_file():
        return path
    _gensim_test_data()  # a missing gensim is one line before the cache directory is made
    path.parent.mkdir(parents=True, exist_ok=True)
    # atomic: concurrent first uses never see half a file
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for text in sample_texts():
            f.write(text + "\n")
    return path
