"""A tokenizer for the GPT/BERT tests: the shared one when it has landed, else a stand-in.

The stand-in is a byte-level BPE from HF ``tokenizers`` with the shared special ids
(pad 0, unk 1, <s> 2, </s> 3, <cls> 4, <sep> 5, <mask> 6), exposing the subset of the
shared ``Tokenizer`` API that the LM families use.
"""

from __future__ import annotations

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>", "<cls>", "<sep>", "<mask>"]


class StandInTokenizer:
    """Byte-level BPE with the shared tokenizer's special ids and method names."""

    pad_id, unk_id, bos_id, eos_id, cls_id, sep_id, mask_id = range(7)

    def __init__(self, tok):
        self._tok = tok

    @classmethod
    def train(cls, texts, vocab_size=8000, **_):
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=2,
            special_tokens=SPECIALS,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )
        tok.train_from_iterator(list(texts), trainer)
        return cls(tok)

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size()

    def encode(self, text, add_special_tokens=False):
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts):
        return [e.ids for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids, skip_special_tokens=True):
        return self._tok.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def token_to_id(self, s):
        return self._tok.token_to_id(s)

    def id_to_token(self, i):
        return self._tok.id_to_token(i)


def train_tokenizer(texts, vocab_size=2000):
    """The shared Tokenizer if available, else :class:`StandInTokenizer`."""
    try:
        from textdecade.tokenizer import Tokenizer

        return Tokenizer.train(texts, vocab_size=vocab_size)
    except (ImportError, AttributeError):
        return StandInTokenizer.train(texts, vocab_size=vocab_size)


def test_tokenizer_has_the_shared_special_ids(corpus_lines):
    tok = train_tokenizer(corpus_lines("gensim_lee.txt", 200), vocab_size=500)
    for i, name in enumerate(SPECIALS):
        assert tok.token_to_id(name) == i
    text = "The government said on Tuesday."
    assert tok.decode(tok.encode(text)) == text
