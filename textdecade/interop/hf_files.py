"""Reading HF ``transformers`` and sentence-transformers directories: config, weights,
tokenizer and pooling (for :mod:`textdecade.interop.hf`)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from textdecade.errors import CheckpointError, FormatError, UserError, first_line

#: HF ``model_type`` -> textdecade family.
SUPPORTED = {"bert": "bert", "gpt2": "gpt"}
SUPPORTED_TEXT = "bert (BertModel, BertForMaskedLM) and gpt2 (GPT2LMHeadModel)"


def read_hf_config(path: Path) -> dict[str, Any]:
    """``config.json`` of a HF directory, checked to be an architecture we support."""
    file = path / "config.json"
    if not file.is_file():
        raise UserError(f"{path} has no config.json (not a HF transformers directory)")
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    # ValueError: JSONDecodeError, UnicodeDecodeError, an int past 4300 digits
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"{file}: not valid JSON ({first_line(exc)})") from None
    if not isinstance(config, dict):
        raise FormatError(f"{file}: expected a JSON object, found a {type(config).__name__}")
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or model_type not in SUPPORTED:
        archs = config.get("architectures")
        names = [a for a in archs if isinstance(a, str)] if isinstance(archs, list) else []
        shown = model_type if isinstance(model_type, str) else None
        arch = ", ".join(names) or shown or "unknown"
        raise UserError(
            f"{path}: unsupported architecture {arch!r} (textdecade imports {SUPPORTED_TEXT})"
        )
    return config


def read_hf_weights(path: Path) -> dict[str, torch.Tensor]:
    """The state dict in ``model.safetensors`` or ``pytorch_model.bin`` (no pickle code run)."""
    st = path / "model.safetensors"
    if st.is_file():
        return _read_safetensors([st])
    binary = path / "pytorch_model.bin"
    if binary.is_file():
        try:
            return torch.load(binary, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(
                f"{binary} cannot be read with weights_only ({first_line(exc)})"
            ) from None
    sharded = sorted(path.glob("model-*.safetensors"))
    if sharded:
        return _read_safetensors(sharded)
    raise CheckpointError(f"{path} has no model.safetensors or pytorch_model.bin")


def _read_safetensors(files: list[Path]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for file in files:
        try:
            out.update(load_file(str(file)))
        except Exception as exc:  # safetensors raises its own error types
            raise CheckpointError(
                f"{file} is not a readable safetensors file ({first_line(exc)})"
            ) from None
    return out


def read_hf_tokenizer(path: Path, model_type: str):
    """A textdecade Tokenizer from ``tokenizer.json`` (or a WordPiece ``vocab.txt``).

    The file's fixed padding and truncation (sentence-transformers ships ``Fixed 128``)
    are dropped: textdecade pads per batch and truncates to the model's context itself.
    """
    from textdecade.tokenizer import Tokenizer

    file = path / "tokenizer.json"
    if file.is_file():
        try:
            obj = json.loads(file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise FormatError(f"{file}: not valid JSON ({exc})") from None
    elif (path / "vocab.txt").is_file() and model_type == "bert":
        obj = _wordpiece_json(path)
    elif (path / "vocab.json").is_file() and (path / "merges.txt").is_file():
        from tokenizers import ByteLevelBPETokenizer  # GPT-2's original two files

        bpe = ByteLevelBPETokenizer(str(path / "vocab.json"), str(path / "merges.txt"))
        obj = json.loads(bpe.to_str())
    else:
        raise UserError(
            f"{path} has no tokenizer.json (nor BERT's vocab.txt or GPT-2's vocab.json and "
            "merges.txt) to tokenize with"
        )
    obj = {**obj, "padding": None, "truncation": None}
    with tempfile.TemporaryDirectory() as tmp:
        clean = Path(tmp) / "tokenizer.json"
        clean.write_text(json.dumps(obj), encoding="utf-8")
        return Tokenizer.from_hf(clean)


def _wordpiece_json(path: Path) -> dict[str, Any]:
    """Build BERT's WordPiece tokenizer from ``vocab.txt`` (+ ``tokenizer_config.json``)."""
    from tokenizers import BertWordPieceTokenizer

    lower = True
    cfg = path / "tokenizer_config.json"
    if cfg.is_file():
        lower = bool(json.loads(cfg.read_text(encoding="utf-8")).get("do_lower_case", True))
    tok = BertWordPieceTokenizer(str(path / "vocab.txt"), lowercase=lower)
    return json.loads(tok.to_str())


def read_sentence_transformers(path: Path) -> tuple[Path, str | None, bool, int | None]:
    """(transformer directory, pooling, normalize, max_seq_length) of a directory.

    For a sentence-transformers directory (``modules.json``) the transformer may sit in a
    module folder (older models: ``0_Transformer/``); for a plain HF one it is ``path``.
    """
    model_dir, pooling, normalize, max_len = path, None, False, None
    modules = path / "modules.json"
    if modules.is_file():
        for module in json.loads(modules.read_text(encoding="utf-8")):
            kind, sub = module.get("type", ""), path / module.get("path", "")
            if kind.endswith("Transformer"):
                model_dir = sub
            if kind.endswith("Normalize"):
                normalize = True
            if kind.endswith("Pooling") and (sub / "config.json").is_file():
                cfg = sub / "config.json"
                pooling = _st_pooling(json.loads(cfg.read_text(encoding="utf-8")), cfg)
    for st_cfg in (model_dir / "sentence_bert_config.json", path / "sentence_bert_config.json"):
        if st_cfg.is_file():
            max_len = json.loads(st_cfg.read_text(encoding="utf-8")).get("max_seq_length")
            break
    return model_dir, pooling, normalize, max_len


def _st_pooling(cfg: dict[str, Any], file: Path) -> str:
    modes = {
        "pooling_mode_mean_tokens": "mean",
        "pooling_mode_cls_token": "cls",
        "pooling_mode_lasttoken": "last",
    }
    chosen = [name for key, name in modes.items() if cfg.get(key)]
    others = [k for k, v in cfg.items() if k.startswith("pooling_mode") and v and k not in modes]
    if len(chosen) != 1 or others:
        raise UserError(f"{file}: only one of mean, cls or last-token pooling is supported")
    return chosen[0]
