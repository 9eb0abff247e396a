"""textdecade: a decade of NLP (Word2Vec to GPT) on one tokenizer, one engine, one eval suite."""

__version__ = "0.1.0"

__all__ = ["__version__"]
