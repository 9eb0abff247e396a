"""The evaluation suite: one set of benchmarks for every model of the decade.

- :mod:`~textdecade.eval.vectors`: :class:`Vectors`, static word vectors (KeyedVectors-like).
- :mod:`~textdecade.eval.analogy`: Google / MSR analogies, 3CosAdd and 3CosMul.
- :mod:`~textdecade.eval.similarity`: word-pair similarity (Spearman, Pearson, OOV ratio).
- :mod:`~textdecade.eval.contextual`: the ``ContextualEncoder`` protocol and static vectors
  from contextual models.
- :mod:`~textdecade.eval.homograph`: sense separation (CoarseWSD-20, WiC, built-in suite).
- :mod:`~textdecade.eval.report` and :mod:`~textdecade.eval.plots`: tables and pictures.
"""

from textdecade.eval.vectors import Vectors, load_vectors_or_none

__all__ = ["Vectors", "load_vectors_or_none"]
