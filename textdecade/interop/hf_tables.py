"""The tables between HF ``transformers`` and textdecade: parameter names, configs,
tokenizer framing (for :mod:`textdecade.interop.hf`)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import torch
from tokenizers import processors

from textdecade.embedding import Framing
from textdecade.errors import CheckpointError, UserError

#: HF activation names <-> textdecade's (see :data:`textdecade.models.blocks.ACTIVATIONS`).
ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh",
               "relu": "relu"}  # fmt: skip
_ACT_TO_HF = {"gelu": "gelu", "gelu_tanh": "gelu_new", "relu": "relu"}
#: textdecade family -> HF model_type it exports to.
EXPORTS = {"bert": "bert", "gpt": "gpt2"}
_BASE = {"bert": "bert.", "gpt2": "transformer."}
#: BERT names outside the layers: HF (without "bert.") -> textdecade.models.bert.
BERT_TOP = [
    *[(f"embeddings.{n}", f"embeddings.{n}") for n in (
        "word_embeddings.weight", "position_embeddings.weight",
        "token_type_embeddings.weight", "LayerNorm.weight", "LayerNorm.bias")],
    *[(f"cls.predictions.transform.{n}", f"mlm.{n}") for n in (
        "dense.weight", "dense.bias", "LayerNorm.weight", "LayerNorm.bias")],
    ("cls.predictions.bias", "mlm.bias"),
    *[(f"pooler.dense.{n}", f"pooler.{n}") for n in ("weight", "bias")],
    *[(f"cls.seq_relationship.{n}", f"nsp_head.{n}") for n in ("weight", "bias")],
]  # fmt: skip
BERT_LAYER = "layer.{i}."
#: textdecade parameters a HF directory may lack (a bare BertModel has no MLM head).
HEAD_PREFIXES = ("mlm.", "pooler.", "nsp_head.")


def name_rows(kind: str, n_layers: int) -> list[tuple[tuple[str, ...], str, str]]:
    """The weight table: (HF names without the base prefix, textdecade name, how).

    ``how`` is "copy"; "t" (transpose: GPT-2's Conv1D stores (in, out), nn.Linear
    (out, in)); or "cat" (BERT's separate query, key and value stacked into the fused
    (3D, D) ``qkv`` of :class:`~textdecade.models.layers.MultiHeadAttention`).
    """
    rows: list[tuple[tuple[str, ...], str, str]] = []

    def both(hf: str, td: str, how: str = "copy") -> None:
        rows.append(((hf + ".weight",), td + ".weight", how))
        rows.append(((hf + ".bias",), td + ".bias", "copy"))

    if kind == "gpt2":
        rows += [(("wte.weight",), "wte.weight", "copy"), (("wpe.weight",), "wpe.weight", "copy")]
        for i in range(n_layers):
            h = f"h.{i}."
            both(h + "ln_1", h + "ln_1")
            both(h + "attn.c_attn", h + "attn.qkv", "t")
            both(h + "attn.c_proj", h + "attn.proj", "t")
            both(h + "ln_2", h + "ln_2")
            both(h + "mlp.c_fc", h + "mlp.fc", "t")
            both(h + "mlp.c_proj", h + "mlp.proj", "t")
        both("ln_f", "ln_f")
        return rows
    rows += [((hf,), td, "copy") for hf, td in BERT_TOP]
    for i in range(n_layers):
        e, t = f"encoder.layer.{i}.", BERT_LAYER.format(i=i)
        for part in ("weight", "bias"):
            qkv = tuple(f"{e}attention.self.{n}.{part}" for n in ("query", "key", "value"))
            rows.append((qkv, f"{t}attn.qkv.{part}", "cat"))
        both(e + "attention.output.dense", t + "attn.proj")
        both(e + "attention.output.LayerNorm", t + "ln_1")
        both(e + "intermediate.dense", t + "mlp.fc")
        both(e + "output.dense", t + "mlp.proj")
        both(e + "output.LayerNorm", t + "ln_2")
    return rows


def _tied(model: torch.nn.Module) -> set[str]:
    """Names of parameters that share storage with an earlier one (tied embeddings)."""
    seen: dict[int, str] = {}
    tied = set()
    for name, tensor in model.state_dict(keep_vars=True).items():
        key = tensor.data_ptr()
        if key in seen:
            tied.add(name)
        seen.setdefault(key, name)
    return tied


def state_from_hf(
    kind: str, hf_state: dict[str, torch.Tensor], model: torch.nn.Module
) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    """Map a HF state dict onto ``model``'s names; also returns what the HF one lacked."""
    base = _BASE[kind]
    hf = {(k[len(base) :] if k.startswith(base) else k): v for k, v in hf_state.items()}
    if "cls.predictions.bias" not in hf and "cls.predictions.decoder.bias" in hf:
        hf["cls.predictions.bias"] = hf["cls.predictions.decoder.bias"]
    target = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for hf_names, td, how in name_rows(kind, model.config.n_layers):
        if td not in target or not all(n in hf for n in hf_names):
            continue
        values = [hf[n] for n in hf_names]
        value = values[0].t() if how == "t" else torch.cat(values) if how == "cat" else values[0]
        if tuple(value.shape) != tuple(target[td].shape):
            raise CheckpointError(
                f"HF weight {hf_names[0]} has shape {tuple(value.shape)}, textdecade's {td} "
                f"expects {tuple(target[td].shape)}"
            )
        out[td] = value.to(target[td].dtype).contiguous()
    missing = tuple(k for k in target if k not in out and k not in _tied(model))
    essential = [k for k in missing if not k.startswith(HEAD_PREFIXES)]
    if essential:
        raise CheckpointError(f"the HF weights lack {essential[0]} ({len(essential)} missing)")
    return out, missing


def state_to_hf(kind: str, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``model``'s weights under HF ``BertForMaskedLM`` / ``GPT2LMHeadModel`` names.

    Parameters a bias-free textdecade model lacks are written as zeros, which computes the
    same function. Tied output embeddings are left out (HF re-ties them on load). A BERT
    trained without next-sentence prediction has no pooler: HF's ``BertModel`` would draw
    one at random (and say its weights were "newly initialized"), so it gets the identity,
    and ``pooler_output`` is ``tanh`` of the ``[CLS]`` state.
    """
    state = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
    out: dict[str, torch.Tensor] = {}
    for hf_names, td, how in name_rows(kind, model.config.n_layers):
        if td in state:
            value = state[td]
        elif td == "pooler.weight":
            value = torch.eye(model.config.d_model)
        elif td == "pooler.bias":
            value = torch.zeros(model.config.d_model)
        elif td.endswith(".bias") and td[: -len("bias")] + "weight" in state:
            # a bias-free model: the same function with zero bias
            value = torch.zeros(state[td[: -len("bias")] + "weight"].shape[0])
        else:
            continue
        parts = [value.t()] if how == "t" else value.chunk(3) if how == "cat" else [value]
        for name, part in zip(hf_names, parts):
            prefix = "" if name.startswith("cls.") else _BASE[kind]
            out[prefix + name] = part.contiguous().clone()
    return out


# ---------------------------------------------------------------------- configs


def _special_meta(tokenizer: Any) -> dict[str, int | None]:
    names = ("pad", "unk", "bos", "eos", "cls", "sep", "mask")
    return {f"{n}_id": getattr(tokenizer, f"{n}_id", None) for n in names}


#: textdecade Config field <-> HF config key, per HF model_type.
CONFIG_KEYS = {
    "gpt2": {"d_model": "n_embd", "n_heads": "n_head", "n_layers": "n_layer",
             "max_len": "n_positions", "d_ff": "n_inner", "activation": "activation_function",
             "ln_eps": "layer_norm_epsilon"},
    "bert": {"d_model": "hidden_size", "n_heads": "num_attention_heads",
             "n_layers": "num_hidden_layers", "max_len": "max_position_embeddings",
             "d_ff": "intermediate_size", "type_vocab_size": "type_vocab_size",
             "activation": "hidden_act", "ln_eps": "layer_norm_eps"},
}  # fmt: skip
#: Defaults of HF configs that omit a key (GPT2Config / BertConfig).
HF_DEFAULTS = {
    "gpt2": {"n_positions": 1024, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5},
    "bert": {"max_position_embeddings": 512, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
             "type_vocab_size": 2},
}  # fmt: skip


def config_from_hf(
    kind: str, hf: dict[str, Any], tokenizer: Any, config_cls: type
) -> tuple[dict[str, Any], dict[str, Any], float]:
    """(textdecade Config values, model meta, LayerNorm epsilon) of a HF config.

    Dropout is set to 0: an imported model is for inference (fine-tuning may set it again).
    """
    hf = {**HF_DEFAULTS[kind], **hf}
    _check_types(kind, hf)
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise UserError("only BERT with absolute position embeddings can be imported")
    act = hf[CONFIG_KEYS[kind]["activation"]]
    if act not in ACTIVATIONS:
        raise UserError(f"unsupported activation '{act}' (supported: {', '.join(ACTIVATIONS)})")
    values = {td: hf.get(key) for td, key in CONFIG_KEYS[kind].items()}
    values.update(vocab_size=hf["vocab_size"], activation=ACTIVATIONS[act], dropout=0.0)
    values["d_ff"] = values["d_ff"] or 0  # GPT-2's n_inner None means 4 * D, as ours 0
    eps = float(values["ln_eps"])
    fields = {f.name for f in dataclasses.fields(config_cls)}
    values = {k: v for k, v in values.items() if k in fields}
    meta = {"vocab_size": int(hf["vocab_size"]), **_special_meta(tokenizer), "hf_model_type": kind}
    return values, meta, eps


def _check_types(kind: str, hf: dict[str, Any]) -> None:
    """Sizes are positive integers and names are strings, before anything is built."""
    keys = CONFIG_KEYS[kind]
    for td, key in [*keys.items(), ("vocab_size", "vocab_size")]:
        value = hf.get(key)
        if td == "activation":
            ok = isinstance(value, str)
        elif td == "ln_eps":
            ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
        elif td == "d_ff":  # GPT-2's n_inner may be null (4 x the width)
            ok = value is None or (_is_int(value) and value >= 0)
        else:
            ok = _is_int(value) and value >= 1
        if not ok:
            raise UserError(f"config.json: '{key}' must be a valid {td} value, found {value!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


#: Where the sizes of a HF config show in its weights: (suffix, expected shape).
_SHAPES = {
    "bert": [
        ("embeddings.word_embeddings.weight", ("vocab_size", "d_model")),
        ("embeddings.position_embeddings.weight", ("max_len", "d_model")),
        ("layer.0.intermediate.dense.weight", ("d_ff", "d_model")),
    ],
    "gpt2": [
        ("wte.weight", ("vocab_size", "d_model")),
        ("wpe.weight", ("max_len", "d_model")),
        ("h.0.mlp.c_fc.weight", ("d_model", "d_ff")),
    ],
}
_LAYER = {"bert": "layer", "gpt2": "h"}  # the layers' name, before their number


def check_sizes_against_weights(
    kind: str, values: dict[str, Any], weights: dict[str, torch.Tensor], where: Any
) -> None:
    """The config's sizes must be the weights' own: a config that asks for more (a width
    of 10^6 beside a 100 MB file) is one line before any model is allocated."""
    sizes = {**values, "d_ff": values.get("d_ff") or 4 * values["d_model"]}
    for suffix, names in _SHAPES[kind]:
        key = next((k for k in weights if k == suffix or k.endswith("." + suffix)), None)
        if key is None:
            continue  # a missing tensor is state_from_hf's to report
        want = tuple(int(sizes[n]) for n in names)
        if tuple(weights[key].shape) != want:
            said = " x ".join(f"{n}={sizes[n]}" for n in names)
            raise CheckpointError(
                f"{where}: config.json says {said} but {key} is "
                f"{' x '.join(map(str, weights[key].shape))}"
            )
    head = _LAYER[kind]
    layers = {
        int(parts[i + 1])
        for parts in (k.split(".") for k in weights)
        for i in range(len(parts) - 1)
        if parts[i] == head and parts[i + 1].isdigit()
    }
    if layers and int(values["n_layers"]) > max(layers) + 1:
        raise CheckpointError(
            f"{where}: config.json asks for {values['n_layers']} layers but the weights "
            f"hold {max(layers) + 1}"
        )


#: The block settings HF's GPT-2 and BERT are built with (the rest cannot be exported).
HF_BLOCKS = {
    "gpt2": {"norm": "pre", "norm_type": "layernorm", "residual": True},
    "bert": {"norm": "post", "norm_type": "layernorm", "residual": True},
}


def check_exportable(kind: str, config: Any) -> None:
    """A one-line UserError when ``config`` asks for blocks HF ``kind`` cannot express.

    (``init`` only chose the starting weights, and GPT's ``bias=False`` exports as zeros.)
    """
    wanted = {**HF_BLOCKS[kind], "activation": tuple(_ACT_TO_HF)}
    for key, ok in wanted.items():
        value = getattr(config, key, None)
        if value is not None and value not in (ok if isinstance(ok, tuple) else (ok,)):
            shown = str(value).lower() if isinstance(value, bool) else value
            allowed = ", ".join(ok) if isinstance(ok, tuple) else str(ok).lower()
            raise UserError(
                f"a model with model.{key}={shown} cannot be exported to HF {kind} "
                f"(its blocks have {key}={allowed})"
            )


def config_to_hf(kind: str, model: torch.nn.Module, tokenizer: Any) -> dict[str, Any]:
    """A HF ``config.json`` describing ``model`` (BertForMaskedLM or GPT2LMHeadModel)."""
    c = model.config
    check_exportable(kind, c)
    values = {td: getattr(c, td, None) for td in CONFIG_KEYS[kind]}
    values["d_ff"] = values["d_ff"] or 4 * c.d_model
    values["activation"] = _ACT_TO_HF[c.activation]
    # a Config without an epsilon field uses its LayerNorms' (GPT: torch's 1e-5)
    values["ln_eps"] = next(m.eps for m in model.modules() if isinstance(m, torch.nn.LayerNorm))
    if kind == "bert":
        values["type_vocab_size"] = values["type_vocab_size"] or 2
    dropouts = {
        "gpt2": ("resid_pdrop", "embd_pdrop", "attn_pdrop"),
        "bert": ("hidden_dropout_prob", "attention_probs_dropout_prob"),
    }[kind]
    return {
        "architectures": ["GPT2LMHeadModel" if kind == "gpt2" else "BertForMaskedLM"],
        "model_type": kind,
        "vocab_size": model.input_embeddings().num_embeddings,
        **{CONFIG_KEYS[kind][td]: v for td, v in values.items()},
        **{name: c.dropout for name in dropouts},
        "pad_token_id": tokenizer.pad_id,
        "bos_token_id": tokenizer.bos_id,
        "eos_token_id": tokenizer.eos_id,
        "tie_word_embeddings": True,
        "dtype": "float32",
    }


def hf_framing(kind: str, tokenizer: Any, max_len: int) -> Framing:
    """BERT reads ``[CLS] text [SEP]``; GPT-2 reads the bare text."""
    pad = tokenizer.pad_id if tokenizer.pad_id is not None else (tokenizer.eos_id or 0)
    if kind == "bert":
        if tokenizer.cls_id is None or tokenizer.sep_id is None:
            raise UserError("the BERT tokenizer has no [CLS]/[SEP] tokens")
        return Framing((tokenizer.cls_id,), (tokenizer.sep_id,), pad, max_len)
    return Framing((), (), pad, max_len)


def tokenizer_files(kind: str, tokenizer: Any, max_len: int) -> tuple[dict, dict, dict] | None:
    """(tokenizer.json, tokenizer_config.json, special_tokens_map.json) for ``AutoTokenizer``.

    A textdecade BPE tokenizer is written as the plain HF JSON inside it, with a
    post-processor that frames texts as the model was trained: ``<cls> A <sep>`` for BERT,
    nothing for GPT. Returns None for a sentencepiece tokenizer (no HF equivalent).
    """
    obj = json.loads(tokenizer.to_json_str())
    if "textdecade" in obj:
        if "tokenizer" not in obj:
            return None
        obj = obj["tokenizer"]
        if kind == "bert":
            cls_tok, sep_tok = (
                tokenizer.id_to_token(tokenizer.cls_id),
                tokenizer.id_to_token(tokenizer.sep_id),
            )
            obj["post_processor"] = json.loads(
                processors.TemplateProcessing(
                    single=f"{cls_tok} $A {sep_tok}",
                    pair=f"{cls_tok} $A {sep_tok} $B:1 {sep_tok}:1",
                    special_tokens=[(cls_tok, tokenizer.cls_id), (sep_tok, tokenizer.sep_id)],
                ).__getstate__()
            )
        else:
            obj["post_processor"] = None
    specials = {}
    for name in ("bos", "eos", "unk", "pad", "cls", "sep", "mask"):
        i = getattr(tokenizer, f"{name}_id", None)
        if i is not None:
            specials[f"{name}_token"] = tokenizer.id_to_token(i)
    inputs = (
        ["input_ids", "token_type_ids", "attention_mask"]
        if kind == "bert"
        else ["input_ids", "attention_mask"]
    )
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": max_len,
        "model_input_names": inputs,
        **specials,
    }
    return obj, config, specials
