"""``load`` a trained model (a textdecade run, a HF directory or hub id) and embed text.

::

    import textdecade as td
    model = td.load("runs/bert-tiny")            # or a HF BERT / GPT-2 directory or hub id
    vecs = model.embed(["a sentence", "another"], batch_size=64, normalize=True)  # (N, D)
    words = model.embed_words("she sat on the bank", ["bank"])                   # (1, D)

The handle works the same for every family and never asks which one it holds, only what the
model's class declares (``textdecade/models/base.py``): ``StaticVectors`` (Word2Vec, GloVe)
embed a text as the mean of its word vectors; ``HiddenStates`` (seq2seq and Transformer
encoders, BERT, GPT) pool their token states; ``Generates`` and ``Translates`` add
:meth:`TextModel.generate` and :meth:`TextModel.translate`.
The conventions (``batch_size``, ``normalize``, ``show_progress_bar``, ``device``,
``convert_to``) are those of sentence-transformers' ``encode``, and the handle also has
sentence-transformers' own surface (``encode``, ``similarity``, ``max_seq_length``,
``semantic_search``; see :mod:`textdecade.st_compat`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import textdecade.embedding as E
from textdecade.embedding import embed_to_file
from textdecade.errors import ConfigError, UserError, first_line
from textdecade.eval.vectors import load_vectors_or_none, vectors_of
from textdecade.interop.hub import model_dir
from textdecade.models.base import Generates, HiddenStates, StaticVectors, Translates
from textdecade.st_compat import SentenceTransformerMixin

__all__ = ["TextModel", "embed", "embed_to_file", "load", "resolve_model", "select_device"]


def select_device(device: str | torch.device | None) -> torch.device:
    """None picks cuda > mps > cpu; otherwise the named device (checked to exist)."""
    from textdecade.pretrain.device import select_device as select

    return select("auto" if device is None else str(device))


def run_framing(model: HiddenStates, tokenizer: Any) -> E.Framing:
    """How a textdecade model reads one text, from what its class declares.

    The ids around a text come from ``embed_framing`` (a masked-LM encoder reads
    ``<cls> text <sep>`` as its pretraining windows did; others read the bare text), and
    ``max_len`` is the model's context.
    """
    prefix, suffix = model.embed_framing(tokenizer)
    pad = getattr(tokenizer, "pad_id", 0)
    return E.Framing(prefix, suffix, 0 if pad is None else int(pad), model.context_size)


class TextModel(SentenceTransformerMixin):
    """A loaded model and its tokenizer, ready to embed text (and to ``encode`` it as a
    ``SentenceTransformer`` would).

    Attributes:
        family: the family name ("bert", "gpt", "word2vec", ...).
        tokenizer: the shared :class:`~textdecade.tokenizer.Tokenizer`.
        model: the family's ``nn.Module`` (eval mode).
        device: where the model runs.
        config: the run's RunConfig (None for an imported HF directory).
        run_dir: the run directory it was loaded from (None for a HF directory).
        framing: how a text becomes a model row (contextual models only).
        pooling: the default pooling ("last" for causal models, else "mean").
        normalize: the default of ``embed(normalize=None)`` (True when a
            sentence-transformers directory ends with a Normalize module).
    """

    def __init__(
        self,
        family: str,
        model: torch.nn.Module,
        tokenizer: Any,
        device: torch.device,
        config: Any = None,
        framing: E.Framing | None = None,
        pooling: str | None = None,
        normalize: bool = False,
        run_dir: Path | None = None,
    ):
        self.family, self.tokenizer, self.config = family, tokenizer, config
        self.run_dir = run_dir
        self.device = select_device(device)
        self.model = model.to(self.device).eval()  # embedding is always inference
        self.static = isinstance(model, StaticVectors)
        if not self.static and not isinstance(model, HiddenStates):
            raise UserError(f"a {family} model can neither give word vectors nor hidden states")
        # what the model's class declares (models/base.py), never found by running it
        self.causal = not self.static and model.causal
        self.mask_optional = not self.static and model.mask_optional
        self.framing = None if self.static else (framing or run_framing(model, tokenizer))
        self.pooling = pooling or ("last" if self.causal else "mean")
        self.normalize = normalize
        self._vectors = None

    def __repr__(self) -> str:
        return f"TextModel(family={self.family!r}, device={str(self.device)!r})"

    @property
    def vectors(self):
        """The static families' word vectors (:class:`~textdecade.eval.vectors.Vectors`)."""
        if not self.static:
            raise UserError(f"a {self.family} model has no static word vectors; use embed_words")
        if self._vectors is None:
            self._vectors = vectors_of(self.model, self.tokenizer)
        return self._vectors

    def to(self, device: str | torch.device) -> TextModel:
        """Move the model to ``device`` (in place); returns self."""
        self.device = select_device(device)
        self.model.to(self.device)
        return self

    # ------------------------------------------------------------------ sentences

    def embed(
        self,
        texts: str | Sequence[str],
        batch_size: int = 64,
        normalize: bool | None = None,
        show_progress_bar: bool = False,
        device: str | torch.device | None = None,
        convert_to: str = "numpy",
        pooling: str | None = None,
    ) -> np.ndarray | torch.Tensor:
        """Embed texts as vectors, one row per text, in input order.

        Args:
            texts: a list of texts (or one text, which gives one vector).
            batch_size: texts per forward pass (batches are sorted by length).
            normalize: scale rows to unit length (None: the model's default).
            show_progress_bar: show a progress bar over batches.
            device: run on this device (the model moves there and stays).
            convert_to: "numpy" (float32 array) or "torch" (a CPU tensor).
            pooling: "mean", "cls" or "last" (None: last for causal models, else mean).

        Returns:
            (N, D) float32 vectors, or (D,) for a single text. An empty text embeds as
            the model's empty input (a zero vector for static vectors). Texts longer than
            the context are truncated, with a warning.
        """
        if convert_to not in ("numpy", "torch"):
            raise ConfigError(f"convert_to must be 'numpy' or 'torch', got {convert_to!r}")
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        if any(not isinstance(t, str) for t in texts):
            raise UserError("embed expects texts (str)")
        if device is not None:
            self.to(device)
        pooling = E.check_pooling(pooling or self.pooling)
        if self.static:
            out = torch.from_numpy(self._static_embed(texts, pooling))
        else:
            ids = self.tokenizer.encode_batch(texts) if texts else []
            out = E.embed_contextual(
                self.model,
                ids,
                self.framing,
                pooling=pooling,
                batch_size=batch_size,
                device=self.device,
                progress=show_progress_bar,
                mask_optional=self.mask_optional,
            )
            if not texts:
                out = torch.zeros(0, self.dim)
        if self.normalize if normalize is None else normalize:
            out = torch.nn.functional.normalize(out, dim=-1)
        if single:
            out = out[0]
        return out if convert_to == "torch" else out.numpy()

    @property
    def dim(self) -> int:
        """D, the width of the vectors this model gives."""
        if self.static:
            return int(self.vectors.vector_size)
        return int(self.model.state_size)

    def _word_vector(self, word: str) -> np.ndarray | None:
        """A static vector, by the vectors' one rule: the word's row, else its most frequent
        case variant's, else its BPE pieces' (``vectors_of``); None when none exists."""
        from textdecade.errors import OutOfVocabulary

        try:
            return np.asarray(self.vectors[word], dtype=np.float32)
        except (OutOfVocabulary, KeyError):
            return None

    def _static_embed(self, texts: list[str], pooling: str) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            found = [v for v in map(self._word_vector, self.tokenizer.words(text)) if v is not None]
            if found:
                # the mean of a text's word vectors; "last" would be its last known word
                out[i] = found[-1] if pooling == "last" else np.mean(found, axis=0)
        return out

    # ------------------------------------------------------------------ words

    def word_states(
        self, sentences: list[list[str]], layers: str = "last", batch_size: int = 32
    ) -> list[np.ndarray]:
        """Contextual vectors of every word of pre-split sentences (``ContextualEncoder``).

        Args:
            sentences: each a list of whitespace words.
            layers: "last", or "last4" (sum of the last four layers, Devlin et al. 2018).
            batch_size: rows per forward pass.

        Returns:
            per sentence an array (W, D): each word's pieces mean-pooled. Static families
            give each word's vector (zeros when unknown). Long sentences are read in
            overlapping windows.
        """
        layers = E.check_layers(layers)
        if self.static:
            return [self.input_word_vectors(words) for words in sentences]
        encoded = [self.tokenizer.encode_words(list(words)) for words in sentences]
        return E.word_states_contextual(
            self.model,
            encoded,
            [len(words) for words in sentences],
            self.framing,
            layers=layers,
            batch_size=batch_size,
            device=self.device,
            causal=self.causal,
            mask_optional=self.mask_optional,
        )

    def input_word_vectors(self, words: list[str]) -> np.ndarray:
        """Context-free vectors (V_words, D): input embedding rows of each word's pieces, mean-pooled."""
        if self.static:
            out = np.zeros((len(words), self.dim), np.float32)
            for i, word in enumerate(words):
                vec = self._word_vector(word)
                if vec is not None:
                    out[i] = vec
            return out
        table = self.model.input_embeddings().weight.detach().float().cpu()
        out = np.zeros((len(words), table.shape[1]), np.float32)
        for i, word in enumerate(words):
            ids = self.tokenizer.word_piece_ids(word)
            if ids:
                out[i] = table[ids].mean(0).numpy()
        return out

    def embed_words(self, text: str, words: Sequence[str], layers: str = "last") -> np.ndarray:
        """Contextual vectors of ``words`` as they occur in ``text``.

        Args:
            text: the context.
            words: words of ``text`` (its first occurrence of each is used; matching is
                case-insensitive when exact case is not found).
            layers: "last" or "last4".

        Returns:
            (len(words), D) float32.

        Raises:
            UserError: a word that does not occur in ``text``.
        """
        if isinstance(words, str):
            words = [words]
        split = self.tokenizer.words(text)
        positions = [_find_word(split, w, text) for w in words]
        states = self.word_states([split], layers=layers)[0]
        return np.stack([states[p] for p in positions]) if positions else states[:0]

    # ------------------------------------------------------------------ scoring

    def perplexity(
        self, texts: Sequence[str] | None = None, max_batches: int = 100, ci: float = 0.95
    ):
        """Held-out loss, perplexity and bits per byte of a trained run.

        Args:
            texts: documents to score (None: the run's own validation split).
            max_batches: batches of 8 windows of the model's context.
            ci: confidence level of the intervals (resampling evaluation batches); 0: none.

        Returns:
            a :class:`~textdecade.eval.perplexity.PerplexityResult`.
        """
        from textdecade.eval.perplexity import evaluate_perplexity

        if self.run_dir is None:
            raise UserError(
                "perplexity scores a textdecade run directory; convert a HF model first "
                "(textdecade import hf DIR -o RUN)"
            )
        return evaluate_perplexity(self.run_dir, texts, max_batches, device=str(self.device), ci=ci)

    # ------------------------------------------------------------------ generation

    def _needs(self, capability: type, what: str) -> None:
        if not isinstance(self.model, capability):
            raise UserError(f"a {self.family} model cannot {what}")

    def generate(
        self,
        prompt: str,
        max_new_tokens: int = 200,
        temperature: float = 0.8,
        top_k: int | None = 200,
        top_p: float | None = None,
        seed: int | None = None,
        stream: Callable[[str], Any] | None = None,
    ) -> str:
        """Continue ``prompt`` with a KV cache (causal LMs: GPT); returns the new text.

        Args:
            prompt: the text to continue ("" starts a new document).
            max_new_tokens, temperature, top_k, top_p, seed: sampling settings (see
                :func:`textdecade.models.generate.generate`); temperature 0 is greedy.
            stream: called with each piece of text as it is produced.

        Raises:
            UserError: the model does not generate (it is no causal language model).
        """
        from textdecade.models.generate import generate

        self._needs(Generates, "generate text (generation needs a causal LM such as gpt)")
        return generate(
            self.model,
            self.tokenizer,
            prompt,
            max_new_tokens,
            temperature,
            top_k,
            top_p,
            seed=seed,
            stream=stream,
        )

    def translate(
        self,
        texts: str | Sequence[str],
        beam: int = 4,
        length_penalty: float = 0.6,
        max_len: int | None = None,
    ) -> str | list[str]:
        """Translate sentences (encoder-decoders: seq2seq, the Transformer).

        Args:
            texts: one sentence or a list.
            beam: beam width (1 is greedy).  length_penalty: GNMT's alpha.
            max_len: the longest output in tokens (None: from the source length).

        Returns:
            one translation per text (a str for a str).
        """
        from textdecade.models.decoding import translate

        self._needs(Translates, "translate (translation needs seq2seq or transformer)")
        if (getattr(self.model, "meta", None) or {}).get("objective") == "denoise":
            warnings.warn(
                "this run was pretrained to denoise plain text, not to translate: it "
                "reconstructs its input (pretrain on --source/--target pairs to translate)",
                stacklevel=2,
            )
        return translate(
            self.model,
            self.tokenizer,
            texts,
            beam=beam,
            length_penalty=length_penalty,
            max_len=max_len,
        )


def _find_word(split: list[str], word: str, text: str) -> int:
    for candidates in (split, [w.lower() for w in split]):
        key = word if candidates is split else word.lower()
        if key in candidates:
            return candidates.index(key)
    raise UserError(f"word '{word}' does not occur in the text {text[:60]!r}")


# ---------------------------------------------------------------------- loading


def load(path: str | Path, device: str | torch.device | None = None) -> TextModel:
    """Load a textdecade run directory, a HF transformers directory (BERT or GPT-2), or a
    HF hub model id (``"gpt2"``, ``"sentence-transformers/all-MiniLM-L6-v2"``).

    Args:
        path: a run directory (``config.json`` naming a family), a HF model directory
            (``config.json`` with a ``model_type``, weights and tokenizer files), such as a
            sentence-transformers model, or a hub id, read from the HF cache (downloaded
            when missing and the hub is online; ``HF_HUB_OFFLINE=1`` keeps it offline).
        device: "cpu", "cuda", "mps"...; None picks cuda > mps > cpu.

    Returns:
        a :class:`TextModel`.
    """
    path = model_dir(path)
    device = select_device(device)
    config_file = path / "config.json"
    if not config_file.is_file() and not (path / "modules.json").is_file():
        raise UserError(f"{path} holds no config.json (neither a textdecade run nor a HF model)")
    try:
        raw = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
    # ValueError: JSONDecodeError, UnicodeDecodeError, an int past 4300 digits
    except (ValueError, RecursionError) as exc:
        raise UserError(f"{config_file} is not valid JSON ({first_line(exc)})") from None
    if isinstance(raw, dict) and "family" in raw:
        from textdecade.pretrain.rundir import load_run

        config, model, tokenizer = load_run(path, device=device)
        # an imported sentence-transformers model keeps its pooling, normalization and
        # context (see textdecade.interop.hf.import_hf_run)
        saved = (model.meta or {}).get("embed") or {}
        framing = run_framing(model, tokenizer) if isinstance(model, HiddenStates) else None
        if framing is not None and saved.get("max_len"):
            framing = dataclasses.replace(framing, max_len=min(framing.max_len, saved["max_len"]))
        return TextModel(
            config.family,
            model,
            tokenizer,
            device,
            config=config,
            framing=framing,
            pooling=saved.get("pooling"),
            normalize=bool(saved.get("normalize", False)),
            run_dir=path,
        )
    from textdecade.interop.hf import import_hf

    imported = import_hf(path, device=device)
    return TextModel(
        imported.family,
        imported.model,
        imported.tokenizer,
        device,
        framing=imported.framing,
        pooling=imported.pooling,
        normalize=imported.normalize,
    )


def resolve_model(path: str | Path, device: str | torch.device | None = None):
    """What an evaluation command was given: a vectors file (``.txt``/``.vec``/``.bin``/
    ``.safetensors``) as :class:`~textdecade.eval.vectors.Vectors`, anything else
    :func:`load`-ed."""
    vectors = load_vectors_or_none(path)
    if vectors is not None:
        return vectors
    return load(path, device=device)


def embed(
    texts: str | Sequence[str], model: str | Path | TextModel, **kwargs: Any
) -> np.ndarray | torch.Tensor:
    """``load(model).embed(texts, **kwargs)``; ``model`` may already be a loaded handle.

    The last model loaded from a path is kept, so calling this in a loop loads it once
    (a run whose weights changed on disk since is loaded again).
    """
    if isinstance(model, TextModel):
        return model.embed(texts, **kwargs)
    path = model_dir(model).resolve()  # a hub id's snapshot; the cache keys on where it is
    stamps = tuple(
        f.stat().st_mtime_ns if f.exists() else 0
        for f in (path / "config.json", path / "model.safetensors")
    )
    device = kwargs.get("device")
    return _load_cached(str(path), stamps, None if device is None else str(device)).embed(
        texts, **kwargs
    )


@functools.lru_cache(maxsize=1)
def _load_cached(path: str, stamps: tuple[int, ...], device: str | None) -> TextModel:
    return load(path, device)
