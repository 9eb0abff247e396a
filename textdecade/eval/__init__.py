"""The evaluation suite: one set of benchmarks for every model of the decade.

- :mod:`~textdecade.eval.vectors`: :class:`Vectors`, static word vectors (KeyedVectors-like).
- :mod:`~textdecade.eval.keyed`: gensim 4's ``KeyedVectors`` queries and evaluations,
  mixed into :class:`Vectors`.
- :mod:`~textdecade.eval.analogy`: Google / MSR analogies, 3CosAdd and 3CosMul.
- :mod:`~textdecade.eval.similarity`: word-pair similarity (Spearman, Pearson, OOV ratio).
- :mod:`~textdecade.eval.contextual`: the ``ContextualEncoder`` protocol, the HF adapter,
  and static vectors from contextual models (input embeddings or averaged contexts).
- :mod:`~textdecade.eval.homograph`, :mod:`~textdecade.eval.wic` (readers in
  :mod:`~textdecade.eval.wsd_data`): sense separation
  on CoarseWSD-20, WiC and the built-in suite.
- :mod:`~textdecade.eval.intervals`: percentile-bootstrap intervals (every score carries
  one) and paired differences; :mod:`~textdecade.eval.paired`: two models on the same
  items (``textdecade eval compare``).
- :mod:`~textdecade.eval.suite`: one entry point per command, for any model.
- :mod:`~textdecade.eval.report` and :mod:`~textdecade.eval.plots`: tables and pictures.

Heavy dependencies (torch, transformers, scikit-learn, matplotlib) load only when used.
"""

from textdecade.eval.analogy import AnalogyResult, evaluate_analogies, read_analogies
from textdecade.eval.contextual import ContextualEncoder, HFEncoder, StaticEncoder, static_vectors
from textdecade.eval.homograph import HomographResult, evaluate_homographs
from textdecade.eval.report import compare, render
from textdecade.eval.similarity import SimilarityResult, evaluate_similarity, read_pairs
from textdecade.eval.suite import (
    as_vectors,
    decade_table,
    run_analogy,
    run_homograph,
    run_similarity,
)
from textdecade.eval.vectors import Vectors, load_vectors_or_none
from textdecade.eval.wic import WicResult, evaluate_wic

__all__ = [
    "AnalogyResult",
    "ContextualEncoder",
    "HFEncoder",
    "HomographResult",
    "SimilarityResult",
    "StaticEncoder",
    "Vectors",
    "WicResult",
    "as_vectors",
    "compare",
    "decade_table",
    "evaluate_analogies",
    "evaluate_homographs",
    "evaluate_similarity",
    "evaluate_wic",
    "load_vectors_or_none",
    "read_analogies",
    "read_pairs",
    "render",
    "run_analogy",
    "run_homograph",
    "run_similarity",
    "static_vectors",
]
