"""The one :class:`Tokenizer` of textdecade: train, save/load, encode/decode, split words.

One class over two backends (byte-level BPE on HF ``tokenizers``, the default, and
``sentencepiece``), saved as ONE JSON file::

    {"textdecade": {"format": 1, "backend": "bpe", "lowercase": false, ...},
     "tokenizer": {...the HF tokenizer.json...}}            # backend "bpe"
    {"textdecade": {..., "backend": "sentencepiece", "model_type": "unigram"},
     "sentencepiece": {"model": "<base64 model proto>"}}    # backend "sentencepiece"

``Tokenizer.load`` also accepts a plain HF ``tokenizer.json`` (GPT-2's, BERT's), as does
:meth:`Tokenizer.from_hf`. Special ids are fixed for trained tokenizers: ``<pad>``=0,
``<unk>``=1, ``<s>``=2, ``</s>``=3, ``<cls>``=4, ``<sep>``=5, ``<mask>``=6; for an
imported one they are looked up by the usual spellings (None where absent).

Example::

    tok = Tokenizer.train(Corpus(), vocab_size=8000)
    tok.save("tokenizer.json")
    ids = Tokenizer.load("tokenizer.json").encode("The bank's rates rose.")
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# The same tuples that tokenizer.backend and tokenizer.model_type are checked against.
from ..config import TOKENIZER_BACKENDS as BACKENDS
from ..config import TOKENIZER_MODEL_TYPES as MODEL_TYPES
from ..errors import ConfigError, CorpusError, FormatError
from ..io import write_text
from .bpe import MIN_BPE_VOCAB, HFBackend, counted, train_bpe
from .specials import SPECIALS, find_specials
from .spm import SPMBackend, train_spm

FORMAT_VERSION = 1


def check_training_settings(
    vocab_size: int, backend: str, model_type: str, min_frequency: int, prefix: str = ""
) -> None:
    """Raise ConfigError unless a tokenizer can be trained with these settings.

    Cheap and reads no text, so a run checks it before it creates its directory.

    Args:
        vocab_size, backend, model_type, min_frequency: as :meth:`Tokenizer.train`.
        prefix: put before the setting's name in messages (``"tokenizer."`` for a run).
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown tokenizer backend {backend!r}; choose one of {BACKENDS}")
    if model_type not in MODEL_TYPES:
        raise ConfigError(f"unknown model_type {model_type!r}; choose one of {MODEL_TYPES}")
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool):
        raise ConfigError(f"{prefix}vocab_size must be an integer, got {vocab_size!r}")
    if backend == "bpe" and vocab_size < MIN_BPE_VOCAB:
        raise ConfigError(
            f"{prefix}vocab_size={vocab_size} is too small: byte-level BPE needs at least "
            f"{MIN_BPE_VOCAB} (7 special tokens + 256 bytes)"
        )
    if backend == "sentencepiece" and vocab_size <= MIN_BPE_VOCAB:
        raise ConfigError(
            f"{prefix}vocab_size={vocab_size} is too small: sentencepiece with byte fallback "
            f"needs more than {MIN_BPE_VOCAB} (7 special tokens + 256 bytes + characters)"
        )
    if min_frequency < 1:
        raise ConfigError(f"{prefix}min_frequency must be >= 1, got {min_frequency}")


class Tokenizer:
    """A trained tokenizer: ids for models, plain words for Word2Vec/GloVe.

    Build one with :meth:`train`, :meth:`load` or :meth:`from_hf`, not the constructor.

    Attributes:
        backend: "bpe", "sentencepiece" or "hf" (an imported HF tokenizer).
        lowercase: whether text is lower-cased before anything else.
        pad_id, unk_id, bos_id, eos_id, cls_id, sep_id, mask_id: special ids (0..6 for
            trained tokenizers; None where an imported one lacks the token).
    """

    def __init__(self, impl: HFBackend | SPMBackend, backend: str, meta: dict[str, Any]):
        self._impl = impl
        self.backend = backend
        self.lowercase = bool(meta.get("lowercase", False))
        self.model_type = meta.get("model_type")
        if backend == "hf":
            ids = find_specials(impl.token_to_id)
        else:
            ids = {name: i for i, (name, _) in enumerate(SPECIALS)}
        self.pad_id: int | None = ids["pad"]
        self.unk_id: int | None = ids["unk"]
        self.bos_id: int | None = ids["bos"]
        self.eos_id: int | None = ids["eos"]
        self.cls_id: int | None = ids["cls"]
        self.sep_id: int | None = ids["sep"]
        self.mask_id: int | None = ids["mask"]
        self._json: str | None = None

    # -- construction ---------------------------------------------------------------
    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int = 8000,
        backend: str = "bpe",
        model_type: str = "bpe",
        min_frequency: int = 2,
        lowercase: bool = False,
    ) -> Tokenizer:
        """Train a tokenizer on texts (streamed once; a :class:`Corpus` works).

        Args:
            texts: training texts.
            vocab_size: total vocabulary size, specials (7) included; byte-level BPE needs
                at least 263 (specials + 256 bytes: that minimum gives a byte-level
                tokenizer with no merges, for character-level comparisons).
            backend: "bpe" (HF tokenizers, byte level) or "sentencepiece".
            model_type: for sentencepiece, "bpe" or "unigram" (ignored for "bpe").
            min_frequency: minimum pair count for a BPE merge.
            lowercase: lower-case all text first.

        Returns:
            The trained tokenizer.

        Raises:
            ConfigError: unknown backend/model_type or a vocab_size too small.
            CorpusError: no non-empty text to train on.
        """
        check_training_settings(vocab_size, backend, model_type, min_frequency)
        n = [0]
        stream = counted((t for t in texts if t and not t.isspace()), n)
        meta = {"lowercase": bool(lowercase)}
        if backend == "bpe":
            hf = _interruptible(train_bpe, stream, vocab_size, min_frequency, lowercase)
            impl: HFBackend | SPMBackend = HFBackend(hf, lowercase=lowercase, native=True)
        else:
            try:
                proto = _interruptible(
                    train_spm, stream, vocab_size, model_type, min_frequency, lowercase
                )
            except RuntimeError:
                if n[0] == 0:
                    raise CorpusError("cannot train a tokenizer: the corpus has no text") from None
                raise
            impl = SPMBackend(proto, lowercase=lowercase, model_type=model_type)
            meta["model_type"] = model_type
        if n[0] == 0:
            raise CorpusError("cannot train a tokenizer: the corpus has no text")
        return cls(impl, backend, meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Tokenizer:
        """Load a textdecade ``tokenizer.json`` (either backend) or a plain HF one.

        Args:
            path: the JSON file, or a directory holding ``tokenizer.json``.

        Raises:
            FormatError: missing, unreadable or malformed file (with the line number).
        """
        path = Path(path)
        if path.is_dir():
            path = path / "tokenizer.json"
        if not path.is_file():
            raise FormatError(f"{path}: tokenizer file not found")
        try:
            text = path.read_text(encoding="utf-8")
            obj = json.loads(text)
        except UnicodeDecodeError:
            raise FormatError(f"{path}: not a tokenizer file (not UTF-8 JSON)") from None
        except json.JSONDecodeError as exc:
            raise FormatError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        return cls._from_obj(obj, str(path))

    @classmethod
    def from_hf(cls, path_or_dir: str | os.PathLike) -> Tokenizer:
        """Import a plain HF ``tokenizer.json`` (a file, or a directory holding one).

        Encode/decode use the file's own pipeline (GPT-2 byte-level BPE, BERT WordPiece,
        ...); special ids are found by their usual spellings (``[CLS]``, ``<|endoftext|>``).
        """
        return cls.load(path_or_dir)

    @classmethod
    def _from_obj(cls, obj: Any, where: str) -> Tokenizer:
        if not isinstance(obj, dict):
            raise FormatError(f"{where}: not a tokenizer file (top level is not an object)")
        try:
            if "textdecade" in obj:
                meta = obj["textdecade"]
                backend = meta.get("backend")
                if backend == "bpe":
                    impl: HFBackend | SPMBackend = HFBackend.from_json(
                        obj["tokenizer"], bool(meta.get("lowercase")), native=True
                    )
                elif backend == "sentencepiece":
                    impl = SPMBackend.from_json(
                        obj["sentencepiece"],
                        bool(meta.get("lowercase")),
                        meta.get("model_type", "bpe"),
                    )
                else:
                    raise FormatError(f"{where}: unknown tokenizer backend {backend!r}")
                return cls(impl, backend, meta)
            if "model" in obj:
                return cls(HFBackend.from_json(obj, False, native=False), "hf", {})
        except FormatError:
            raise
        except Exception as exc:  # the HF/spm parsers raise assorted types
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise FormatError(f"{where}: malformed tokenizer file ({msg})") from None
        raise FormatError(
            f"{where}: not a tokenizer file (no 'textdecade' header and no HF 'model')"
        )

    # -- saving ---------------------------------------------------------------------
    def to_json_str(self) -> str:
        """The JSON text :meth:`save` writes."""
        if self._json is None:
            if self.backend == "hf":
                obj: dict[str, Any] = self._impl.to_json()
            else:
                meta: dict[str, Any] = {
                    "format": FORMAT_VERSION,
                    "backend": self.backend,
                    "lowercase": self.lowercase,
                    "specials": {token: i for i, (_, token) in enumerate(SPECIALS)},
                }
                key = "tokenizer" if self.backend == "bpe" else "sentencepiece"
                if self.model_type is not None:
                    meta["model_type"] = self.model_type
                obj = {"textdecade": meta, key: self._impl.to_json()}
            self._json = json.dumps(obj, ensure_ascii=False)
        return self._json

    def save(self, path: str | os.PathLike) -> None:
        """Write the one-file JSON atomically (a directory gets ``tokenizer.json``)."""
        path = Path(path)
        if path.is_dir():
            path = path / "tokenizer.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, self.to_json_str())

    @property
    def fingerprint(self) -> str:
        """SHA-256 (hex) of the saved JSON: identifies the tokenizer in shard manifests."""
        return hashlib.sha256(self.to_json_str().encode("utf-8")).hexdigest()

    # -- vocabulary -----------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """Number of ids, specials included."""
        return self._impl.vocab_size

    def __len__(self) -> int:
        return self.vocab_size

    def token_to_id(self, token: str) -> int | None:
        """Id of a token string (as the vocabulary spells it), or None."""
        return self._impl.token_to_id(token)

    def id_to_token(self, i: int) -> str | None:
        """Token string of an id, or None when out of range."""
        return self._impl.id_to_token(int(i))

    @property
    def specials(self) -> dict[str, int]:
        """Special tokens present, ``{"<pad>": 0, "<unk>": 1, ...}`` (token -> id)."""
        out = {}
        for name, _ in SPECIALS:
            i = getattr(self, f"{name}_id")
            if i is not None:
                out[self.id_to_token(i)] = i
        return out

    # -- encode / decode ------------------------------------------------------------
    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """Ids of a text; ``add_special_tokens`` wraps them in ``<s> ... </s>`` (an imported
        HF tokenizer uses its own template, e.g. BERT's ``[CLS] ... [SEP]``)."""
        return self._impl.encode(text, add_special_tokens)

    def encode_batch(self, texts: list[str], add_special_tokens: bool = False) -> list[list[int]]:
        """Ids of many texts, encoded in parallel (Rust threads / sentencepiece threads)."""
        return self._impl.encode_batch(list(texts), add_special_tokens)

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Text of ids. ``decode(encode(t)) == normalize(t)`` (exactly ``t`` for NFC text
        with the BPE backend). A leading space of the decoded piece sequence is taken as
        the prepended one and dropped, so decode a continuation together with its prefix.
        """
        return self._impl.decode([int(i) for i in ids], skip_special_tokens)

    def decode_batch(self, batch: Iterable[Iterable[int]], skip_special_tokens: bool = True):
        """:meth:`decode` for many id lists."""
        return self._impl.decode_batch(
            [[int(i) for i in ids] for ids in batch], skip_special_tokens
        )

    def normalize(self, text: str) -> str:
        """The text as the tokenizer sees it (BPE: NFC [+ lower]; sentencepiece: NFKC,
        whitespace collapsed); what :meth:`decode` gives back."""
        return self._impl.normalize(text)

    # -- words ----------------------------------------------------------------------
    def words(self, text: str) -> list[str]:
        """Plain words, split by the same normalizer and pre-tokenizer as :meth:`encode`.

        ``"The bank's rates rose."`` -> ``["The", "bank", "'s", "rates", "rose", "."]``;
        lower-cased iff the tokenizer lower-cases. BPE: NFC, then GPT-2's split (exactly
        the ByteLevel pre-tokenizer); sentencepiece: its NFKC normalizer, then the same
        split; an imported HF tokenizer: its own normalizer and pre-tokenizer.
        """
        return self._impl.words(text)

    def words_batch(self, texts: Iterable[str]) -> list[list[str]]:
        """:meth:`words` for many texts (about 1.5M words/s on one core)."""
        words = self._impl.words
        return [words(t) for t in texts]

    def word_piece_ids(self, word: str) -> list[int]:
        """Ids of a word as it appears mid-sentence (after a space)."""
        return self._impl.word_ids_batch([word])[0] if word and not word.isspace() else []

    def encode_words(self, words: list[str]) -> tuple[list[int], list[int]]:
        """Ids of words as running text (``" ".join(words)``) and their word of origin.

        Returns:
            ``(ids, word_index)`` of equal length: ``word_index[k]`` is the index in
            ``words`` of the word that id ``k`` came from. Empty words give no ids.
        """
        keep = [i for i, w in enumerate(words) if w and not w.isspace()]
        pieces = self._impl.word_ids_batch([words[i] for i in keep]) if keep else []
        ids: list[int] = []
        index: list[int] = []
        for i, p in zip(keep, pieces):
            ids.extend(p)
            index.extend([i] * len(p))
        return ids, index

    def __repr__(self) -> str:
        extra = f", model_type={self.model_type!r}" if self.model_type else ""
        return (
            f"Tokenizer(backend={self.backend!r}{extra}, vocab_size={self.vocab_size}, "
            f"lowercase={self.lowercase})"
        )


def _interruptible(train, *args):
    """Run a native trainer (HF tokenizers', sentencepiece's) so Ctrl-C stops it at once.

    Python delivers signals only between bytecodes of the main thread, which a native
    trainer holds for minutes: the trainer runs in a daemon thread instead while the main
    thread waits in short slices, so the signal's exception surfaces promptly. The
    abandoned trainer ends with the process.
    """
    if threading.current_thread() is not threading.main_thread():
        return train(*args)
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = train(*args)
        except BaseException as exc:  # re-raised in the caller's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="textdecade-tokenizer-train", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.1)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
