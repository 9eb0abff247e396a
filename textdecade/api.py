"""``load`` a trained model (a textdecade run or a HF transformers directory) and embed text.

::

    import textdecade as td
    model = td.load("runs/bert-tiny")            # or a HF BERT / GPT-2 directory
    vecs = model.embed(["a sentence", "another"], batch_size=64, normalize=True)  # (N, D)
    words = model.embed_words("she sat on the bank", ["bank"])                   # (1, D)

The handle works the same for every family and never asks which one it holds: a model with
``to_vectors`` (Word2Vec, GloVe) embeds a text as the mean of its word vectors; a model with
``hidden_states`` (seq2seq and Transformer encoders, BERT, GPT) pools its token states.
The conventions (``batch_size``, ``normalize``, ``show_progress_bar``, ``device``,
``convert_to``) are those of sentence-transformers' ``encode``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from textdecade import embedding as E
from textdecade.embedding import embed_to_file
from textdecade.errors import ConfigError, UserError

__all__ = ["TextModel", "embed", "embed_to_file", "load", "select_device"]


def select_device(device: str | torch.device | None) -> torch.device:
    """None picks cuda > mps > cpu; otherwise the named device (checked to exist)."""
    from textdecade.pretrain.device import select_device as select

    return select("auto" if device is None else str(device))


def run_framing(model: torch.nn.Module, tokenizer: Any) -> E.Framing:
    """How a textdecade run's model reads one text, from what the model says about itself.

    A model may declare ``embed_prefix`` / ``embed_suffix`` (sequences of ids). Without
    them, a masked-LM encoder (one with ``mlm_logits``) reads ``<cls> text <sep>`` as its
    pretraining windows did (Devlin et al. 2018); anything else reads the bare text.
    ``max_len`` is the model's context.
    """
    prefix = tuple(getattr(model, "embed_prefix", ()) or ())
    suffix = tuple(getattr(model, "embed_suffix", ()) or ())
    meta = getattr(model, "meta", None) or {}
    if not prefix and not suffix and hasattr(model, "mlm_logits"):
        cls_id, sep_id = meta.get("cls_id", tokenizer.cls_id), meta.get("sep_id", tokenizer.sep_id)
        if cls_id is not None and sep_id is not None:
            prefix, suffix = (int(cls_id),), (int(sep_id),)
    max_len = int(getattr(model.config, "max_len", 0) or 10**9)
    pad = getattr(tokenizer, "pad_id", 0)
    return E.Framing(prefix, suffix, 0 if pad is None else int(pad), max_len)


class TextModel:
    """A loaded model and its tokenizer, ready to embed text.

    Attributes:
        family: the family name ("bert", "gpt", "word2vec", ...).
        tokenizer: the shared :class:`~textdecade.tokenizer.Tokenizer`.
        model: the family's ``nn.Module`` (eval mode).
        device: where the model runs.
        config: the run's RunConfig (None for an imported HF directory).
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
    ):
        self.family, self.tokenizer, self.config = family, tokenizer, config
        self.device = select_device(device)
        self.model = model.to(self.device).eval()  # embedding is always inference
        self.static = hasattr(model, "to_vectors")
        if not self.static and not hasattr(model, "hidden_states"):
            raise UserError(f"a {family} model can neither give word vectors nor hidden states")
        self._dim: int | None = None
        self.mask_optional = False
        self.causal = False if self.static else self._probe()
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
            self._vectors = self.model.to_vectors(self.tokenizer)
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
        return int(self._dim)

    def _probe(self) -> bool:
        """Run two 3-token texts that differ only in the last token; return "is causal".

        A causal model's states at the first two positions cannot see the last token, so
        they agree (the ``causal`` attribute, when a model has one, is taken instead).
        This asks what the model does rather than which family it is.
        """
        vocab = self.model.input_embeddings().num_embeddings
        ids = torch.tensor([[7, 8, 9], [7, 8, 10]]) % vocab  # (2, 3)
        device = next(self.model.parameters()).device
        with torch.inference_mode():
            last = self.model.hidden_states(ids.to(device), torch.ones_like(ids).to(device))[-1]
        self._dim = int(last.shape[-1])
        try:  # may the mask be left out for batches without padding?
            with torch.inference_mode():
                unmasked = self.model.hidden_states(ids.to(device), None)[-1]
            self.mask_optional = bool(torch.allclose(unmasked, last, atol=1e-5))
        except (TypeError, AttributeError, RuntimeError):
            self.mask_optional = False
        flag = getattr(self.model, "causal", None)
        if flag is not None:
            return bool(flag)
        return bool(torch.allclose(last[0, :2], last[1, :2], atol=1e-5))

    def _word_vector(self, word: str) -> np.ndarray | None:
        """A static vector (its lower-cased form's, or a subword backoff, when needed)."""
        from textdecade.errors import OutOfVocabulary

        for key in dict.fromkeys((word, word.lower())):
            if key in self.vectors:
                return np.asarray(self.vectors[key], dtype=np.float32)
        try:
            return np.asarray(self.vectors[word], dtype=np.float32)  # backoff, if any
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


def _find_word(split: list[str], word: str, text: str) -> int:
    for candidates in (split, [w.lower() for w in split]):
        key = word if candidates is split else word.lower()
        if key in candidates:
            return candidates.index(key)
    raise UserError(f"word '{word}' does not occur in the text {text[:60]!r}")


# ---------------------------------------------------------------------- loading


def load(path: str | Path, device: str | torch.device | None = None) -> TextModel:
    """Load a textdecade run directory or a HF transformers directory (BERT or GPT-2).

    Args:
        path: a run directory (``config.json`` naming a family) or a HF model directory
            (``config.json`` with a ``model_type``, weights and tokenizer files), such as a
            sentence-transformers model.
        device: "cpu", "cuda", "mps"...; None picks cuda > mps > cpu.

    Returns:
        a :class:`TextModel`.
    """
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"model directory not found: {path}")
    device = select_device(device)
    config_file = path / "config.json"
    if not config_file.is_file() and not (path / "modules.json").is_file():
        raise UserError(f"{path} holds no config.json (neither a textdecade run nor a HF model)")
    try:
        raw = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{config_file} is not valid JSON ({exc})") from None
    if "family" in raw:
        from textdecade.pretrain.rundir import load_run

        config, model, tokenizer = load_run(path, device=device)
        # an imported sentence-transformers model keeps its pooling, normalization and
        # context (see textdecade.interop.hf.import_hf_run)
        saved = (getattr(model, "meta", None) or {}).get("embed") or {}
        framing = run_framing(model, tokenizer)
        if saved.get("max_len"):
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


def embed(
    texts: str | Sequence[str], model: str | Path | TextModel, **kwargs: Any
) -> np.ndarray | torch.Tensor:
    """``load(model).embed(texts, **kwargs)``; ``model`` may already be a loaded handle.

    The last model loaded from a path is kept, so calling this in a loop loads it once
    (a run whose weights changed on disk since is loaded again).
    """
    if isinstance(model, TextModel):
        return model.embed(texts, **kwargs)
    path = Path(model).resolve()
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
