"""``textdecade pretrain FAMILY --init-from SOURCE``: a new run that starts from a model.

SOURCE is a textdecade run, a HF BERT or GPT-2 directory, or a hub id (through the HF
cache, :mod:`textdecade.interop.hub`). The new run directory receives SOURCE's model
(``config.json``, ``model.safetensors``, ``data_meta.json``) and its tokenizer, and no
training state; the Trainer then "resumes" it: it prepares the user's corpus with that
tokenizer and trains on from those weights (nanoGPT's ``init_from``, the HF Trainer's
everyday fine-tune), with SOURCE's settings and the command line's overrides.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from textdecade.errors import UserError

__all__ = ["init_run_from"]

#: What a textdecade run passes on: its model and tokenizer, not its data or state.
MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json", "data_meta.json")


def init_run_from(source: str, run_dir: str | Path, family: str, *, overwrite: bool) -> Path:
    """Lay out ``run_dir`` as a run of ``source``'s model, ready for ``--resume``.

    Raises:
        UserError: ``source`` is no model, holds another family, or ``run_dir`` holds a
            run (without ``overwrite``). A refused start leaves no ``run_dir`` behind.
    """
    from textdecade.interop.hf import import_hf_run
    from textdecade.interop.hub import model_dir
    from textdecade.pretrain.lock import RunLock
    from textdecade.pretrain.rundir import claim_output_dir, is_run_dir, read_config_dict

    out = Path(run_dir)
    made = not out.exists()
    try:
        if is_run_dir(source):
            theirs = read_config_dict(source)["family"]
            _check_family(source, theirs, family)
            with RunLock(out) as lock:
                claim_output_dir(out, overwrite=overwrite, lock=lock)
                for name in MODEL_FILES:
                    if (Path(source) / name).is_file():
                        shutil.copy2(Path(source) / name, out / name)
        else:
            _, imported = import_hf_run(model_dir(source), out, overwrite=overwrite)
            _check_family(source, imported.family, family)
    except UserError:
        if made and out.exists():
            shutil.rmtree(out, ignore_errors=True)
        raise
    return out


def _check_family(source: str, theirs: str, family: str) -> None:
    if theirs != family:
        raise UserError(
            f"--init-from {source} holds a {theirs} model, not {family}: "
            f"run `textdecade pretrain {theirs} --init-from {source}`"
        )
