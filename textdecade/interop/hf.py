"""Two-way interop with HF ``transformers``: BERT and GPT-2 directories <-> textdecade models.

Import reads a HF directory (``config.json``, ``model.safetensors`` or ``pytorch_model.bin``,
and ``tokenizer.json`` or a WordPiece ``vocab.txt``), builds textdecade's own BERT or GPT
with the same sizes and copies the weights through a name table; a
sentence-transformers directory (``modules.json``) also gives its pooling, normalization
and ``max_seq_length``. Export writes a directory that ``transformers.AutoModel``,
``AutoModelForMaskedLM`` / ``AutoModelForCausalLM`` and ``AutoTokenizer`` load.

Parity with ``transformers`` itself (the same logits within 1e-5 in fp32) is tested both ways.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from textdecade.embedding import Framing
from textdecade.errors import UserError
from textdecade.interop.hf_files import (
    SUPPORTED,
    read_hf_config,
    read_hf_tokenizer,
    read_hf_weights,
    read_sentence_transformers,
)
from textdecade.interop.hf_tables import (
    EXPORTS,
    check_exportable,
    check_sizes_against_weights,
    config_from_hf,
    config_to_hf,
    hf_framing,
    state_from_hf,
    state_to_hf,
    tokenizer_files,
)
from textdecade.io import atomic_path, sort_safetensors_metadata, write_json

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


@dataclass
class Imported:
    """A HF model brought into textdecade.

    Attributes:
        family: "bert" or "gpt".
        model: the textdecade model (eval mode) with the HF weights.
        tokenizer: a textdecade Tokenizer wrapping the HF one (HF ids kept).
        config: the family's model Config.
        meta: the model's meta (JSON-able; a run's ``data_meta.json``, see
            :func:`import_hf_run`).
        framing: how one text becomes a model row ([CLS] ... [SEP] for BERT).
        pooling: "mean"/"cls" from a sentence-transformers directory, else None.
        normalize: True when a sentence-transformers directory ends in Normalize.
        missing: textdecade parameters the directory did not have (e.g. the MLM head of
            a bare ``BertModel``), left at their initialisation.
    """

    family: str
    model: torch.nn.Module
    tokenizer: Any
    config: Any
    meta: dict[str, Any]
    framing: Framing
    pooling: str | None = None
    normalize: bool = False
    missing: tuple[str, ...] = ()


# ---------------------------------------------------------------------- import


def import_hf(path: str | Path, device: str | torch.device = "cpu") -> Imported:
    """Load a HF BERT or GPT-2 directory as a textdecade model.

    Args:
        path: the HF directory (as ``save_pretrained`` writes it, or a sentence-transformers
            model directory).
        device: where the model goes.

    Returns:
        an :class:`Imported` (model in eval mode).

    Raises:
        UserError: an unsupported architecture, missing files, or weights that do not fit.
    """
    from textdecade.models import get_family

    path = Path(path)
    if not path.is_dir():
        raise UserError(f"HF model directory not found: {path}")
    path, pooling, normalize, st_max_len = read_sentence_transformers(path)
    hf_config = read_hf_config(path)
    kind = hf_config["model_type"]
    family = SUPPORTED[kind]
    Model, Config, _ = get_family(family)
    tokenizer = read_hf_tokenizer(path, kind)
    values, meta, eps = config_from_hf(kind, hf_config, tokenizer, Config)
    weights = read_hf_weights(path)
    check_sizes_against_weights(kind, values, weights, path)
    if kind == "bert" and "cls.seq_relationship.weight" in weights:
        values["nsp"] = True  # a next-sentence head (BertForPreTraining): keep it and its pooler
    model = Model(Config(**values), meta)
    for module in model.modules():  # the configs may not carry it: HF BERT uses 1e-12
        if isinstance(module, torch.nn.LayerNorm):
            module.eps = eps
    state, missing = state_from_hf(kind, weights, model)
    model.load_state_dict(state, strict=False)
    model.to(device).eval()
    max_len = min(int(values["max_len"]), int(st_max_len or values["max_len"]))
    framing = hf_framing(kind, tokenizer, max_len)
    return Imported(
        family, model, tokenizer, model.config, meta, framing, pooling, normalize, missing
    )


def import_hf_run(
    path: str | Path, run_dir: str | Path, *, overwrite: bool = False
) -> tuple[Path, Imported]:
    """Convert a HF directory into a textdecade run directory (``textdecade import hf``).

    The run holds ``config.json`` (a RunConfig with the imported model's sizes),
    ``model.safetensors``, ``tokenizer.json`` (the HF tokenizer, its ids kept) and
    ``data_meta.json`` (special ids, and a sentence-transformers directory's pooling,
    normalization and ``max_seq_length`` under ``"embed"``), so ``td.load``,
    ``textdecade generate`` and the evaluations take it like any trained run.

    Returns:
        ``(run_dir, imported)``.
    """
    from textdecade.config import RunConfig
    from textdecade.pretrain.lock import RunLock
    from textdecade.pretrain.rundir import (
        DATA_META,
        TOKENIZER,
        claim_output_dir,
        save_weights,
        write_config,
    )

    imported = import_hf(path, device="cpu")
    model = imported.model
    eps = next(m.eps for m in model.modules() if isinstance(m, torch.nn.LayerNorm))
    fields = {f.name for f in dataclasses.fields(imported.config)}
    if "ln_eps" not in fields and eps != torch.nn.LayerNorm(1).eps:
        raise UserError(
            f"{path}: LayerNorm epsilon {eps} cannot be stored in a {imported.family} run "
            "(load the HF directory with td.load instead)"
        )
    run_dir = Path(run_dir)
    with RunLock(run_dir) as lock:  # a live run there is refused, not replaced under it
        claim_output_dir(run_dir, overwrite=overwrite, lock=lock)  # no --resume to suggest
        embed = {"pooling": imported.pooling, "normalize": imported.normalize}
        embed["max_len"] = imported.framing.max_len
        write_json(run_dir / DATA_META, {**imported.meta, "embed": embed})
        imported.tokenizer.save(run_dir / TOKENIZER)
        save_weights(model, run_dir, imported.family)
        write_config(run_dir, RunConfig(family=imported.family, model=imported.config))
    return run_dir, imported


# ---------------------------------------------------------------------- export


def export_hf(
    handle: Any, out_dir: str | Path, *, overwrite: bool = False, source: str | Path | None = None
) -> Path:
    """Write a loaded textdecade BERT or GPT model as a HF transformers directory.

    Args:
        handle: a loaded model, ``textdecade.load(run)`` (anything with ``family``,
            ``model`` and ``tokenizer``; the api floor loads, this floor writes files).
        out_dir: the directory to write (created). One that holds a run or other files is
            refused unless ``overwrite`` (a run in it is then replaced; other files of the
            same names are replaced atomically).
        overwrite: write into a directory that is not empty.
        source: the directory the model was loaded from (default: ``handle.run_dir``);
            ``out_dir`` may never be it or hold it, even with ``overwrite``.

    Returns:
        ``out_dir``, holding ``config.json``, ``model.safetensors`` (``BertForMaskedLM`` /
        ``GPT2LMHeadModel`` names), ``tokenizer.json``, ``tokenizer_config.json`` and
        ``special_tokens_map.json``.
    """
    from textdecade.pretrain.lock import RunLock
    from textdecade.pretrain.rundir import claim_output_dir, is_run_dir

    model, tokenizer = handle.model, handle.tokenizer
    kind = EXPORTS.get(handle.family)
    if kind is None:
        raise UserError(
            f"a {handle.family} model cannot be exported to HF transformers "
            "(textdecade exports bert and gpt runs)"
        )
    check_exportable(kind, model.config)  # before anything is written
    out = Path(out_dir)
    source = source if source is not None else getattr(handle, "run_dir", None)
    if source is not None:
        src, dst = Path(source).resolve(), out.resolve()
        if dst == src or dst in src.parents:
            # Even with --overwrite: replacing the source would destroy what is being exported.
            raise UserError(
                f"export: the output {out} is (or holds) the model being exported, {source}; "
                "choose another -o directory"
            )
    # A run in ``out`` may be training: hold its lock while it is replaced. The lock file
    # goes afterwards, as the directory is a HF one then, not a run.
    lock = RunLock(out) if is_run_dir(out) else None
    try:
        claim_output_dir(out, overwrite=overwrite, lock=lock)
        _write_hf(kind, model, tokenizer, out)
    finally:
        if lock is not None and lock.held:
            lock.release()
            if not is_run_dir(out):
                lock.path.unlink(missing_ok=True)
    return out


def _write_hf(kind: str, model: torch.nn.Module, tokenizer: Any, out: Path) -> None:
    with atomic_path(out / "model.safetensors") as tmp:
        save_file(state_to_hf(kind, model), str(tmp), metadata={"format": "pt"})
        sort_safetensors_metadata(tmp)
    write_json(out / "config.json", config_to_hf(kind, model, tokenizer))
    files = tokenizer_files(kind, tokenizer, model.config.max_len)
    if files is None:
        warnings.warn(
            "a sentencepiece tokenizer has no HF tokenizer.json form: exported the model only",
            stacklevel=4,
        )
        return
    for name, obj in zip(TOKENIZER_FILES, files):
        write_json(out / name, obj)
