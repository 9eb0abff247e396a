"""The lab experiments that are not a grid of variants: their CLI options and dispatch.

``textdecade lab lottery``, ``search`` and ``double-descent`` share the ``lab``
subcommand with the grid experiments; this module adds their own options (each refused,
one line, on an experiment it does not apply to) and turns the parsed arguments into
their settings. Kept light: nothing heavier than argparse is imported until one runs.
"""

from __future__ import annotations

import argparse
from typing import Any

from textdecade.errors import UserError

#: name -> the papers it reproduces (for ``textdecade lab --help``).
EXTRAS = {
    "lottery": "Frankle & Carbin 2019 (the lottery ticket hypothesis), Frankle et al. 2020 "
    "(rewinding)",
    "search": "Bergstra et al. 2011 (TPE), Li et al. 2017 (Hyperband), Akiba et al. 2019 "
    "(Optuna): a budgeted architecture and hyperparameter search",
    "double-descent": "Nakkiran et al. 2019: model-wise deep double descent under label noise",
}
#: option dest -> the experiment it belongs to.
_OWNER = {
    "controls": "lottery",
    "sparsities": "lottery",
    "rewind_step": "lottery",
    "prune_embeddings": "lottery",
    "trials": "search",
    "sampler": "search",
    "pruner": "search",
    "space": "search",
    "budget": "search",
    "widths": "double-descent",
    "noise": "double-descent",
    "train_size": "double-descent",
    "steps": "double-descent",
    "encoder": "double-descent",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The lottery's, the search's and double descent's options (all default None: unset)."""
    g = p.add_argument_group("lab lottery")
    g.add_argument(
        "--controls",
        nargs="+",
        metavar="NAME",
        help="rewind-init, rewind-k, reinit, random-mask (default: all four)",
    )
    g.add_argument(
        "--sparsities",
        metavar="S,S,...",
        help="pruning levels in [0, 1), one round each (default: 0.5,0.75,0.9)",
    )
    g.add_argument(
        "--rewind-step",
        type=int,
        metavar="K",
        help="the step rewind-k returns to (default: 5%% of the training steps)",
    )
    g.add_argument(
        "--prune-embeddings",
        action="store_true",
        default=None,
        help="prune the embeddings (and a tied output layer) too",
    )
    g = p.add_argument_group("lab search")
    g.add_argument("--trials", type=int, help="trials in all (default 24; more continues a study)")
    g.add_argument("--sampler", help="tpe (default) or random")
    g.add_argument("--pruner", help="hyperband (default), median or none")
    g.add_argument(
        "--space",
        nargs="+",
        metavar="KEY=VALUES",
        help="narrow or replace the family's space: KEY=a,b,c or KEY=LOW:HIGH; keys: "
        "n_layers d_model n_heads ffn_mult activation norm_type lr batch_size",
    )
    g.add_argument(
        "--budget",
        type=int,
        metavar="SEQUENCES",
        help="training sequences per trial, steps x batch size (default: the preset's "
        "300 x 8 at tiny)",
    )
    g = p.add_argument_group("lab double-descent")
    g.add_argument("--widths", nargs="+", type=int, metavar="W", help="hidden widths to train")
    g.add_argument("--noise", type=float, help="share of training labels corrupted (default 0.2)")
    g.add_argument("--train-size", type=int, help="training sentences (default 500)")
    g.add_argument("--steps", type=int, help="full-batch training steps (default 500)")
    g.add_argument(
        "--encoder",
        help="frozen features: minilm (default) or a textdecade run directory",
    )


def check_options(args: argparse.Namespace) -> None:
    """Refuse an option given to an experiment it does not belong to."""
    for dest, owner in _OWNER.items():
        if getattr(args, dest, None) is not None and args.experiment != owner:
            flag = "--" + dest.replace("_", "-")
            raise UserError(f"{flag} applies to lab {owner} only")


def _space(entries: list[str] | None) -> dict[str, str]:
    space = {}
    for text in entries or ():
        if "=" not in text:
            raise UserError(f"--space expects KEY=VALUES, got '{text}'")
        key, values = text.split("=", 1)
        space[key.strip()] = values.strip()
    return space


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"--sparsities takes numbers separated by commas, got '{text}'") from None


def _lottery(args: argparse.Namespace):
    from textdecade.lab.lottery import CONTROLS, DEFAULT_SPARSITIES, LotterySettings, run_lottery

    for flag, value in (("--variants", args.variants), ("--depths", args.depths)):
        if value:
            raise UserError(f"{flag} does not apply to lab lottery")
    controls = [c for text in args.controls or CONTROLS for c in text.split(",") if c]
    settings = LotterySettings(
        family=args.family,
        preset=args.preset,
        seeds=args.seeds,
        controls=controls,
        sparsities=_floats(args.sparsities) if args.sparsities else list(DEFAULT_SPARSITIES),
        rewind_step=args.rewind_step,
        prune_embeddings=bool(args.prune_embeddings),
        corpus=list(args.corpus or ()),
        dataset=args.dataset,
        max_texts=args.max_texts,
        overrides=list(args.set or ()),
    )
    return run_lottery, settings, {}


def run(args: argparse.Namespace):
    """The runner of the experiment ``args.experiment`` names: (runner, settings, keyword
    arguments) for the CLI to call and print."""
    common: dict[str, Any] = {}
    if args.experiment == "lottery":
        return _lottery(args)
    if args.experiment == "search":
        from textdecade.lab.search import SearchSettings, run_search

        if args.variants or args.depths:
            raise UserError(
                "lab search draws its own variants; --variants and --depths do not apply"
            )
        settings = SearchSettings(
            family=args.family,
            preset=args.preset,
            sampler=args.sampler or "tpe",
            pruner=args.pruner or "hyperband",
            space=_space(args.space),
            budget=args.budget,
            corpus=list(args.corpus or ()),
            dataset=args.dataset,
            max_texts=args.max_texts,
            overrides=list(args.set or ()),
        )
        common["trials"] = 24 if args.trials is None else args.trials
        return run_search, settings, common
    from textdecade.lab.double_descent import DoubleDescentSettings, run_double_descent

    for flag, value in (
        ("--family", args.family),
        ("--variants", args.variants),
        ("--depths", args.depths),
        ("--set", args.set),
        ("--corpus", args.corpus),
        ("--dataset", args.dataset),
    ):
        if value:
            raise UserError(f"{flag} does not apply to lab double-descent (CoarseWSD-20 senses)")
    if args.preset != "tiny":
        raise UserError(
            "lab double-descent has one size (its MLPs run on a CPU); --preset does not apply"
        )
    settings = DoubleDescentSettings(seeds=args.seeds)
    for dest in ("widths", "noise", "train_size", "steps", "encoder"):
        if getattr(args, dest) is not None:
            setattr(settings, dest, getattr(args, dest))
    return run_double_descent, settings, common
