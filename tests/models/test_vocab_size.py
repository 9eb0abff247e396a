"""``model.vocab_size`` means one thing in every family."""

from __future__ import annotations

import pytest

from textdecade.errors import ConfigError
from textdecade.models import get_family

SIZES = dict(d_model=16, n_heads=2, n_layers=1, d_ff=32, max_len=16, d_hidden=16)


@pytest.mark.parametrize("family", ["gpt", "bert", "transformer", "seq2seq"])
def test_zero_takes_the_tokenizers_larger_pads_smaller_is_refused(family):
    Model, Config, _ = get_family(family)
    fields = Config.__dataclass_fields__
    make = lambda v: Config(**{k: x for k, x in SIZES.items() if k in fields}, vocab_size=v)  # noqa: E731
    meta = {"vocab_size": 300, "objective": "denoise"}
    assert Model(make(0), meta).input_embeddings().num_embeddings == 300
    assert Model(make(320), meta).input_embeddings().num_embeddings == 320
    with pytest.raises(
        ConfigError, match="model.vocab_size=200 is smaller than the tokenizer's 300"
    ):
        Model(make(200), meta)
