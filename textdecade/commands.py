"""What each ``textdecade`` subcommand does with its parsed arguments (:mod:`textdecade.cli`
parses them): a few lines each, calling the library."""

from __future__ import annotations

import functools
import sys
import tempfile
from pathlib import Path

from textdecade.errors import UserError
from textdecade.extras import check


def _corpus_from_args(args):
    from textdecade.config import DataConfig
    from textdecade.data.opening import open_corpus

    return open_corpus(
        DataConfig(
            corpus=tuple(args.corpus or ()),
            dataset=args.dataset,
            split=args.split or "train",
            text_field=args.text_field or "text",
            max_texts=args.max_texts,
        )
    )


# ----------------------------------------------------------------------------- tokenizer
def cmd_tokenizer_train(args) -> int:
    from textdecade.tokenizer import Tokenizer

    corpus = _corpus_from_args(args)
    tok = Tokenizer.train(
        corpus,
        vocab_size=args.vocab_size,
        backend=args.backend,
        model_type=args.model_type,
        min_frequency=args.min_frequency,
        lowercase=args.lowercase,
    )
    tok.save(args.output)
    print(f"{args.backend} tokenizer with {tok.vocab_size} tokens -> {args.output}")
    return 0


def cmd_data_prepare(args) -> int:
    from textdecade.data.shards import prepare_shards
    from textdecade.tokenizer import Tokenizer

    tok = Tokenizer.load(args.tokenizer)
    manifest = prepare_shards(_corpus_from_args(args), tok, args.output)
    print(
        f"{manifest['n_tokens']:,} tokens in {len(manifest['shards'])} shard(s) "
        f"({manifest['dtype']}) -> {args.output}"
    )
    return 0


# ------------------------------------------------------------------------------ pretrain
def build_run_config(args):
    """The RunConfig of ``textdecade pretrain`` (also used by ``decade``)."""
    from textdecade.config import build_config
    from textdecade.models import get_family
    from textdecade.pretrain import rundir

    _, Config, presets = get_family(args.family)
    # The flags go in as typed values (they win over --set), not as TOML text parsed again.
    settings: dict[str, dict] = {"data": {}, "train": {}}
    if args.corpus:
        settings["data"]["corpus"] = tuple(args.corpus)
    for flag, section, key in (
        ("dataset", "data", "dataset"),
        ("split", "data", "split"),
        ("text_field", "data", "text_field"),
        ("source", "data", "source"),
        ("target", "data", "target"),
        ("max_texts", "data", "max_texts"),
        ("device", "train", "device"),
        ("steps", "train", "steps"),
    ):
        if getattr(args, flag, None) is not None:
            settings[section][key] = getattr(args, flag)
    if args.compile:
        settings["train"]["compile"] = True
    if args.tensorboard:
        settings["train"]["tensorboard"] = True
    recipe = args.config
    if args.resume and rundir.is_run_dir(args.output):
        recipe = rundir.read_config_dict(args.output)  # resume with the run's own settings
    return build_config(
        args.family, Config, presets, args.preset, recipe, list(args.set or ()), settings
    )


def cmd_pretrain(args) -> int:
    from textdecade.data.opening import names_sample
    from textdecade.data.sample import check_sample
    from textdecade.pretrain.trainer import Trainer

    if args.output is None:
        args.output = f"runs/{args.family}-{args.preset}"
    config = build_run_config(args)  # every setting checked before any work
    if not args.resume and names_sample(config.data):
        check_sample()  # a missing gensim is one line before the run directory exists
    if args.init_from:
        config = _start_from(args)
    result = Trainer(
        config, args.output, resume=args.resume, overwrite=args.overwrite, progress=not args.quiet
    ).fit()
    if not result.is_main:  # under torchrun, rank 0 alone reports
        return 0
    shown = {k: v for k, v in result.metrics.items() if k in ("loss", "val_loss", "bpb", "val_bpb")}
    print(
        f"{config.family} run -> {result.run_dir} (step {result.step}) "
        + " ".join(f"{k}={v:.4f}" for k, v in shown.items())
    )
    return 0


def _start_from(args):
    """Make ``args.output`` a run of ``--init-from``'s model; the Trainer resumes it."""
    import shutil

    from textdecade.init_from import init_run_from

    if args.resume:
        raise UserError("--init-from starts a new run; to continue this one, pass --resume alone")
    made = not Path(args.output).exists()
    init_run_from(args.init_from, args.output, args.family, overwrite=args.overwrite)
    args.resume, args.overwrite = True, False
    try:
        return build_run_config(args)  # the model's own settings, then the command line's
    except UserError:
        if made:
            shutil.rmtree(args.output, ignore_errors=True)
        raise


# ---------------------------------------------------------------------------------- eval
def _eval_models(args, run, resolve: bool = True):
    """Run ``run(model)`` for each named model; print one table (several models side by side).

    ``args.ci`` (the confidence level, checked here before any work) is set to a float."""
    from textdecade.api import resolve_model
    from textdecade.eval import compare, render
    from textdecade.eval.intervals import check_level

    args.ci = check_level(args.ci)
    results = {}
    for path in args.models:
        results[path] = run(resolve_model(path, device=args.device) if resolve else path)
    if len(results) == 1:
        print(render(next(iter(results.values())), args.format))
    else:
        print(compare(results, args.format))
    return 0


def _eval_corpus(args):
    return _corpus_from_args(args) if (args.corpus or args.dataset) else None


def _check_default_data(args, purpose: str) -> None:
    """Without ``--data`` the task reads files that come with gensim: check it before any
    model is loaded."""
    if not args.data:
        check("gensim", purpose)


def cmd_eval_analogy(args) -> int:
    from textdecade.eval import run_analogy
    from textdecade.eval.analogy import DEFAULT_PURPOSE

    _check_default_data(args, DEFAULT_PURPOSE)

    return _eval_models(
        args,
        lambda m: run_analogy(
            m,
            args.data,
            args.method,
            None if args.restrict_vocab == 0 else args.restrict_vocab,
            args.vectors,
            _eval_corpus(args),
            ci=args.ci,
            progress=not args.quiet,
        ),
    )


def cmd_eval_similarity(args) -> int:
    from textdecade.eval import run_similarity
    from textdecade.eval.similarity import DEFAULT_PURPOSE

    _check_default_data(args, DEFAULT_PURPOSE)

    return _eval_models(
        args,
        lambda m: run_similarity(
            m,
            args.data or None,
            args.restrict_vocab,
            args.vectors,
            _eval_corpus(args),
            ci=args.ci,
            progress=not args.quiet,
        ),
    )


def cmd_eval_homograph(args) -> int:
    from textdecade.eval import run_homograph

    return _eval_models(
        args,
        lambda m: run_homograph(
            m,
            args.data,
            args.layers,
            args.words,
            args.max_per_sense,
            args.max_test_per_sense,
            probe=args.probe,
            release=args.release,
            ci=args.ci,
            progress=not args.quiet,
        ),
    )


def cmd_eval_perplexity(args) -> int:
    from textdecade.eval.perplexity import evaluate_perplexity
    from textdecade.pretrain.rundir import is_run_dir

    corpus = _eval_corpus(args)
    if corpus is None and (
        bad := [p for p in args.models if Path(p).is_dir() and not is_run_dir(p)]
    ):
        raise UserError(
            f"{bad[0]} is no run directory, so it holds no held-out text of its own: "
            "pass --corpus FILE to score text"
        )
    with tempfile.TemporaryDirectory() as tmp:
        return _eval_models(
            args,
            lambda path: evaluate_perplexity(
                _as_run_dir(path, Path(tmp)),
                corpus,
                args.max_batches,
                device=args.device,
                ci=args.ci,
                progress=not args.quiet,
            ),
            resolve=False,
        )


def _as_run_dir(path: str, scratch: Path) -> Path:
    """``path`` if it is a run directory; a HF directory (or hub id) imported into a run
    under ``scratch`` otherwise, so every command that reads runs takes HF models too."""
    from textdecade.interop.hf import import_hf_run
    from textdecade.interop.hub import model_dir
    from textdecade.pretrain.rundir import is_run_dir

    if is_run_dir(path):
        return Path(path)
    source = model_dir(path)
    if not (Path(source) / "config.json").is_file():
        return Path(path)  # not a model directory: the run reader says what is wrong
    run = scratch / f"imported-{len(list(scratch.iterdir()))}"
    return import_hf_run(source, run)[0]


# --------------------------------------------------------------------------------- embed
def cmd_embed(args) -> int:
    from textdecade.api import load
    from textdecade.embedding import embed_to_file

    handle = load(args.run, device=args.device)
    if args.word_vectors or args.words:
        from textdecade.eval import as_vectors

        vectors = as_vectors(handle, args.words or (), progress=not args.quiet)
        if args.word_vectors:
            vectors.save(args.word_vectors)
            print(
                f"{len(vectors):,} word vectors ({vectors.vector_size}-d) -> {args.word_vectors}",
                file=sys.stderr,
            )
        for word in args.words or ():
            print(word, " ".join(f"{x:.6g}" for x in vectors[word]))
        return 0
    if args.input:
        stream = open(args.input, encoding="utf-8", errors="replace")  # noqa: SIM115
    else:
        stream = sys.stdin
    with stream:
        texts = (line.rstrip("\n") for line in stream)
        n = embed_to_file(
            handle,
            texts,
            args.output or "-",
            batch_size=args.batch_size,
            normalize=True if args.normalize else None,
            pooling=args.pooling,
            show_progress_bar=not args.quiet,  # a bar over each chunk's batches, on stderr
        )
    if args.output:
        print(f"{n:,} texts embedded -> {args.output}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------- interop hf
def cmd_export_hf(args) -> int:
    from textdecade.api import load
    from textdecade.interop.hf import export_hf

    # HF files hold CPU tensors
    out = export_hf(
        load(args.run, device="cpu"), args.output, overwrite=args.overwrite, source=args.run
    )
    print(f"HF transformers directory -> {out}")
    return 0


def cmd_import_hf(args) -> int:
    from textdecade.interop.hf import import_hf_run

    path, imported = import_hf_run(args.directory, args.output, overwrite=args.overwrite)
    print(f"{imported.family} run -> {path}")
    return 0


# ------------------------------------------------------------------------------ generate
def cmd_generate(args) -> int:
    from textdecade.api import load
    from textdecade.models.base import Generates

    handle = load(args.run, device=args.device)
    if not isinstance(handle.model, Generates):
        handle.generate(args.prompt)  # the api's one-line refusal, before the prompt is echoed

    def write(piece: str) -> None:
        sys.stdout.write(piece)
        sys.stdout.flush()

    if not args.no_stream:
        write(args.prompt)
    text = handle.generate(
        args.prompt,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k or None,
        top_p=args.top_p,
        seed=args.seed,
        stream=None if args.no_stream else write,
    )
    print(args.prompt + text if args.no_stream else "")
    return 0


# -------------------------------------------------------------------------------- decade
def cmd_decade(args) -> int:
    from textdecade.decade import ORDER, DecadeSettings, run_decade

    settings = DecadeSettings(
        corpus=list(args.corpus or ()),
        dataset=args.dataset,
        preset=args.preset,
        families=list(args.families or ORDER),
        overrides=list(args.set or ()),
        homograph_data=args.homograph_data,
        max_texts=args.max_texts,
        seeds=args.seeds,
        minutes=args.minutes,
    )
    return _run_and_print(run_decade, args.output, settings, args)


def _run_and_print(run, out: str, settings, args) -> int:
    """Run a many-run command (``decade``, ``lab``) and print the report it wrote."""
    report = run(
        out,
        settings,
        device=args.device,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    print(report.read_text(encoding="utf-8"))
    print(f"report -> {report}")
    return 0


# ------------------------------------------------------------------------------ lab
def cmd_lab(args) -> int:
    from textdecade.lab import LabSettings, extras, run_lab
    from textdecade.lab.experiments import EXPERIMENTS

    if args.experiment not in EXPERIMENTS and args.experiment not in extras.EXTRAS:
        names = ", ".join([*EXPERIMENTS, *extras.EXTRAS])
        raise UserError(f"unknown experiment '{args.experiment}' (choose from: {names})")
    extras.check_options(args)
    if args.experiment in extras.EXTRAS:
        run, settings, common = extras.run(args)
        out = args.output or f"lab-{args.experiment}"
        return _run_and_print(functools.partial(run, **common), out, settings, args)
    settings = LabSettings(
        experiment=args.experiment,
        family=args.family,
        preset=args.preset,
        seeds=args.seeds,
        corpus=list(args.corpus or ()),
        dataset=args.dataset,
        max_texts=args.max_texts,
        overrides=list(args.set or ()),
        variants=list(args.variants or ()),
        depths=list(args.depths or ()),
    )
    return _run_and_print(run_lab, args.output or f"lab-{args.experiment}", settings, args)


# ------------------------------------------------------------------------------ translate
def cmd_translate(args) -> int:
    from textdecade.api import load
    from textdecade.eval.bleu import translate_lines
    from textdecade.io import read_lines
    from textdecade.models.base import Translates

    if bool(args.texts) == bool(args.input):
        raise UserError("give either sentences to translate or --input FILE, not both")
    texts = list(args.texts) if args.texts else read_lines(args.input)
    handle = load(args.run, device=args.device)
    if not isinstance(handle.model, Translates):
        handle.translate(texts)  # the api's one-line refusal
    lines = translate_lines(
        lambda batch: handle.translate(
            batch, beam=args.beam, length_penalty=args.length_penalty, max_len=args.max_len
        ),
        handle.tokenizer,
        texts,
        handle.model.config.max_len,
        progress=not args.quiet and len(texts) > 1,
    )
    for line in lines:
        print(line)
    return 0


def cmd_eval_bleu(args) -> int:
    from textdecade.eval.bleu import bleu_run
    from textdecade.eval.intervals import check_level

    level = check_level(args.ci)
    for run in args.models:
        result = bleu_run(
            run,
            args.source,
            args.reference,
            beam=args.beam,
            max_lines=args.max_lines,
            device=args.device,
            output=args.output,
            ci=level,
            progress=not args.quiet,
        )
        print(f"{run}: {result}")
    return 0


def _can(handle, task: str, path: str) -> None:
    """Refuse (one line) a task the model cannot do, from what its family declares."""
    from textdecade.api import TextModel
    from textdecade.models.base import Translates

    if task == "bleu" and not (
        isinstance(handle, TextModel) and isinstance(handle.model, Translates)
    ):
        what = f"a {handle.family} run" if isinstance(handle, TextModel) else "a vectors file"
        raise UserError(
            f"{path} is {what}: it cannot translate (bleu needs seq2seq or transformer)"
        )


def _score_for_compare(args, handle, level: float):
    """One model's result of ``args.task`` (as the task's own ``eval`` command scores it)."""
    from textdecade.eval import run_analogy, run_homograph, run_similarity

    task, data, progress = args.task, args.data, not args.quiet
    if task == "analogy":
        restrict = 30000 if args.restrict_vocab is None else args.restrict_vocab or None
        return run_analogy(
            handle,
            data[0] if data else None,
            restrict_vocab=restrict,
            ci=level,
            progress=progress,
        )
    if task == "similarity":
        return run_similarity(
            handle, data or None, args.restrict_vocab or None, ci=level, progress=progress
        )
    if task in ("homograph", "wic"):
        return run_homograph(
            handle,
            data[0] if data else None,
            args.layers,
            max_per_sense=args.max_per_sense,
            max_test_per_sense=args.max_test_per_sense,
            ci=level,
            progress=progress,
        )
    from textdecade.eval.bleu import evaluate_bleu

    sources, references = args.test_set
    result, _ = evaluate_bleu(
        handle.model,
        handle.tokenizer,
        sources,
        references,
        beam=args.beam,
        ci=level,
        progress=progress,
    )
    return result


def cmd_eval_compare(args) -> int:
    """``textdecade eval compare RUN_A RUN_B --task T``: A minus B on the same items."""
    from pathlib import Path

    from textdecade.api import resolve_model
    from textdecade.eval import render
    from textdecade.eval.intervals import check_level
    from textdecade.eval.paired import compare_results
    from textdecade.eval.suite import is_wic

    level = check_level(args.ci)
    data = Path(args.data[0]) if args.data else None
    if args.task in ("homograph", "wic") and data is not None and not data.exists():
        raise UserError(f"{data}: no such homograph data (a CoarseWSD-20 folder, TSV or WiC)")
    if args.task == "wic" and (data is None or not is_wic(data)):
        raise UserError("--task wic needs --data with WiC files (*.data.txt and *.gold.txt)")
    if args.task == "homograph" and data is not None and is_wic(data):
        raise UserError(f"{data} holds WiC pairs: use --task wic")
    if args.task == "bleu":
        from textdecade.eval.bleu import read_test_set

        if not (args.source and args.reference):
            raise UserError("--task bleu needs --source and --reference")
        args.test_set = read_test_set(args.source, args.reference, args.max_lines)
    if args.task in ("analogy", "similarity"):
        from textdecade.eval import analogy, similarity

        _check_default_data(
            args, (analogy if args.task == "analogy" else similarity).DEFAULT_PURPOSE
        )
    handles = [resolve_model(path, device=args.device) for path in (args.run_a, args.run_b)]
    for handle, path in zip(handles, (args.run_a, args.run_b)):
        _can(handle, args.task, path)
    a, b = (_score_for_compare(args, h, level) for h in handles)
    print(render(compare_results(args.task, a, b, (args.run_a, args.run_b), level), args.format))
    return 0


# ---------------------------------------------------------------------------------- plot
PLOT_KINDS = ("curves", "attention", "embeddings")


def cmd_plot(args) -> int:
    check("matplotlib", "textdecade plot")  # before a model is loaded to draw
    kind, rest = (
        (args.what[0], args.what[1:]) if args.what[0] in PLOT_KINDS else ("curves", args.what)
    )
    if kind == "curves":
        from textdecade.pretrain.plots import plot_run

        if len(rest) != 1:
            raise UserError("plot: give one run directory (textdecade plot RUN)")
        for path in plot_run(rest[0], args.output):
            print(path)
    elif kind == "attention":
        from textdecade.eval.attention_plot import plot_attention_run

        if len(rest) != 2:
            raise UserError('plot attention: give RUN and "a sentence"')
        out = args.output or "attention.png"
        picked = {"layer": args.layer, "head": args.head}
        print(plot_attention_run(rest[0], rest[1], out, args.target, args.beam, **picked))
    else:
        from textdecade.api import resolve_model
        from textdecade.eval.suite import plot_embeddings

        if len(rest) != 1 or not args.words:
            raise UserError("plot embeddings: give RUN_OR_VECTORS and --words w1 w2 ...")
        out = args.output or "embeddings.png"
        print(plot_embeddings(resolve_model(rest[0]), args.words, out, method=args.method))
    return 0


# ---------------------------------------------------------------------------------- main
