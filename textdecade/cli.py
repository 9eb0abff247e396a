"""The ``textdecade`` command line: argument parsing only; every subcommand calls the library
through its handler in :mod:`textdecade.commands`.

User mistakes (:class:`~textdecade.errors.UserError`) and a full disk become one line on
stderr and exit code 2; an interrupted training run exits 130 after writing its checkpoint.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from textdecade import __version__
from textdecade.commands import (
    PLOT_KINDS,
    cmd_data_prepare,
    cmd_decade,
    cmd_embed,
    cmd_eval_analogy,
    cmd_eval_bleu,
    cmd_eval_compare,
    cmd_eval_homograph,
    cmd_eval_perplexity,
    cmd_eval_similarity,
    cmd_export_hf,
    cmd_generate,
    cmd_import_hf,
    cmd_lab,
    cmd_plot,
    cmd_pretrain,
    cmd_tokenizer_train,
    cmd_translate,
)
from textdecade.errors import Interrupted, UserError, is_disk_full

EPILOG_PRETRAIN = """examples:
  textdecade pretrain gpt                                  # built-in sample corpus, tiny preset
  textdecade pretrain word2vec --corpus text/ -o runs/w2v --set model.window=8
  textdecade pretrain bert --dataset wikitext:wikitext-2-raw-v1 --preset small
  textdecade pretrain transformer --source train.de --target train.en -o runs/mt
  textdecade pretrain gpt -o runs/gpt --resume             # continue an interrupted run
  torchrun --nproc_per_node=2 -m textdecade pretrain gpt   # data parallel
"""


#: The one device rule of every command (textdecade.pretrain.device.select_device).
DEVICE_HELP = "auto (default: cuda > mps > cpu), cpu, cuda, cuda:N or mps"


class _Parser(argparse.ArgumentParser):
    """Usage mistakes in one line; the usage itself is one ``--help`` away."""

    def error(self, message: str):
        self.exit(2, f"textdecade: error: {message} (see {self.prog} --help)\n")


def _at_least(minimum: int):
    """An argparse type: an integer no smaller than ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _positive_float(text: str) -> float:
    """An argparse type: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _probability(text: str) -> float:
    """An argparse type: a number in (0, 1]."""
    value = _positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


POSITIVE, NON_NEGATIVE = _at_least(1), _at_least(0)


def _head(text: str) -> int | str:
    """An argparse type for ``--head``: a head number from 0, or "mean" (all heads)."""
    if text == "mean":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a head number or mean, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0 (or mean), got {value}")
    return value


def _add_corpus_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--corpus",
        nargs="+",
        metavar="PATH",
        default=None,
        help="text/jsonl/parquet files, directories or globs (.gz/.bz2/.xz too); "
        "default: the built-in sample corpus",
    )
    p.add_argument("--dataset", metavar="NAME[:CONFIG]", help="a HF datasets name instead of files")
    p.add_argument("--split", default=None, help="dataset split (default: train)")
    p.add_argument("--text-field", default=None, help="jsonl/dataset text field (default: text)")
    p.add_argument("--max-texts", type=POSITIVE, default=None, help="read at most this many texts")


def _add(
    parent, name: str, help_text: str, epilog: str, handler, *, computes: bool = False
) -> argparse.ArgumentParser:
    """A subcommand parser whose handler ``main`` calls with the parsed arguments.

    ``computes``: the command runs a model in this process (not through the Trainer, which
    picks its own thread count), so ``main`` first lowers torch's threads to the free cores.
    """
    p = parent.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(handler=handler, computes=computes)
    return p


def _register_tokenizer(sub) -> None:
    """``textdecade tokenizer train``."""
    tok = sub.add_parser(
        "tokenizer",
        help="train the shared tokenizer",
        description="Train the one tokenizer all the families share.",
    )
    tok_sub = tok.add_subparsers(dest="tokenizer_command", metavar="ACTION", required=True)
    p = _add(
        tok_sub,
        "train",
        "train a BPE (HF tokenizers) or sentencepiece tokenizer on a corpus",
        "example:\n  textdecade tokenizer train --corpus corpus/*.txt --vocab-size 16000 "
        "-o tokenizer.json",
        cmd_tokenizer_train,
    )
    _add_corpus_args(p)
    p.add_argument("--vocab-size", type=POSITIVE, default=8000)
    p.add_argument("--backend", choices=["bpe", "sentencepiece"], default="bpe")
    p.add_argument(
        "--model-type", choices=["bpe", "unigram"], default="bpe", help="sentencepiece model type"
    )
    p.add_argument("--min-frequency", type=NON_NEGATIVE, default=2)
    p.add_argument("--lowercase", action="store_true")
    p.add_argument("-o", "--output", default="tokenizer.json")


def _register_data(sub) -> None:
    """``textdecade data prepare``."""
    data = sub.add_parser(
        "data",
        help="prepare token shards",
        description="Encode a corpus into memmapped token shards.",
    )
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    p = _add(
        data_sub,
        "prepare",
        "encode a corpus into token shards on disk (uint16/uint32 memmaps)",
        "example:\n  textdecade data prepare --corpus corpus/ --tokenizer tokenizer.json "
        "-o shards/",
        cmd_data_prepare,
    )
    _add_corpus_args(p)
    p.add_argument("--tokenizer", required=True, help="a tokenizer.json")
    p.add_argument("-o", "--output", required=True, help="output directory")


def _register_pretrain(sub) -> None:
    """``textdecade pretrain FAMILY``."""
    p = _add(
        sub,
        "pretrain",
        "pretrain a model family through the one engine",
        EPILOG_PRETRAIN,
        cmd_pretrain,
    )
    from textdecade.models import FAMILIES

    p.add_argument(
        "family", choices=list(FAMILIES), metavar="FAMILY", help="one of: " + ", ".join(FAMILIES)
    )
    _add_corpus_args(p)
    p.add_argument("--source", help="parallel corpus: source-side file (seq2seq, transformer)")
    p.add_argument("--target", help="parallel corpus: target-side file")
    p.add_argument(
        "--preset",
        default="tiny",
        choices=["tiny", "small", "base"],
        help="tiny: CPU minutes; small: one GPU under an hour; base: the paper's size",
    )
    p.add_argument("--config", help="a TOML recipe with [model] [train] [data] [tokenizer] tables")
    p.add_argument(
        "--set",
        action="append",
        metavar="SECTION.KEY=VALUE",
        help="override one setting, e.g. --set train.lr=1e-3 (repeatable)",
    )
    p.add_argument("-o", "--output", help="run directory (default: runs/FAMILY-PRESET)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument(
        "--init-from",
        metavar="RUN_OR_HF",
        help="start from this model and its tokenizer: a textdecade run, a HF BERT/GPT-2 "
        "directory or a hub id (continued pretraining or a fine-tune on your corpus)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a run in the directory")
    p.add_argument("--device", help=DEVICE_HELP)
    p.add_argument("--steps", type=POSITIVE, help="optimizer steps (same as --set train.steps=N)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--tensorboard", action="store_true", help="also log to RUN/tensorboard")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _register_eval(sub) -> None:
    """``textdecade eval analogy|similarity|homograph|perplexity|bleu``."""
    ev = sub.add_parser(
        "eval",
        help="score models on analogy, similarity, homographs, perplexity, BLEU",
        description="The one evaluation suite, for every family of the decade.",
    )
    ev_sub = ev.add_subparsers(dest="eval_command", metavar="TASK", required=True)

    p = _eval_parser(
        ev_sub,
        "analogy",
        "word analogies (Google questions-words by default, or MSR)",
        "textdecade eval analogy runs/w2v runs/glove --method 3cosmul",
        cmd_eval_analogy,
    )
    p.add_argument("--data", help="a questions-words.txt-style or MSR CSV file")
    p.add_argument("--method", choices=["3cosadd", "3cosmul"], default="3cosadd")
    p.add_argument(
        "--restrict-vocab",
        type=NON_NEGATIVE,
        default=30000,
        help="the N most frequent words form the vocabulary (word2vec's "
        "compute-accuracy uses 30000; gensim 300000; 0 = all)",
    )
    _vectors_args(p)
    p = _eval_parser(
        ev_sub,
        "similarity",
        "word-pair similarity: Spearman/Pearson and coverage",
        "textdecade eval similarity runs/w2v --data EN-SIMLEX-999.txt",
        cmd_eval_similarity,
    )
    p.add_argument("--data", nargs="+", help="similarity files (default: WS-353 and SimLex-999)")
    p.add_argument("--restrict-vocab", type=NON_NEGATIVE, default=None)
    _vectors_args(p)
    p = _eval_parser(
        ev_sub,
        "homograph",
        "does a contextual vector separate a word's senses?",
        "textdecade eval homograph runs/bert-tiny --data CoarseWSD-20/ --layers last4",
        cmd_eval_homograph,
    )
    p.add_argument(
        "--data",
        help="a CoarseWSD-20 folder, a sense TSV or WiC files (default: the built-in suite)",
    )
    p.add_argument("--layers", choices=["last", "last4"], default="last")
    p.add_argument("--words", nargs="+", help="only these target words")
    p.add_argument("--max-per-sense", type=POSITIVE, help="cap of training instances per sense")
    p.add_argument("--max-test-per-sense", type=POSITIVE, help="cap of test instances per sense")
    p.add_argument(
        "--probe", action="store_true", help="also score a linear probe (logistic regression)"
    )
    p.add_argument(
        "--release",
        type=POSITIVE,
        help="only sense-TSV rows of this release or earlier (1: the built-in suite's first "
        "192 sentences, as older scores were measured)",
    )

    p = _eval_parser(
        ev_sub,
        "perplexity",
        "held-out loss, perplexity and bits per byte (tokenizer-free)",
        "textdecade eval perplexity runs/gpt-tiny --corpus held_out.txt",
        cmd_eval_perplexity,
    )
    p.add_argument("--max-batches", type=POSITIVE, default=100)
    _add_corpus_args(p)

    p = _eval_parser(
        ev_sub,
        "bleu",
        "corpus BLEU with sacrebleu (detokenized; signature printed)",
        "textdecade eval bleu runs/mt --source test.de --reference test.en",
        cmd_eval_bleu,
    )
    p.add_argument("--source", required=True)
    p.add_argument("--reference", required=True)
    p.add_argument("--beam", type=POSITIVE, default=4)
    p.add_argument("--max-lines", type=POSITIVE, default=None)
    p.add_argument("--output", help="also write the translations here")
    _register_compare(ev_sub)


def _register_compare(ev_sub) -> None:
    """``textdecade eval compare RUN_A RUN_B --task T``."""
    p = _add(
        ev_sub,
        "compare",
        "two models on the same items: the difference, its interval and a paired p-value",
        "examples:\n  textdecade eval compare runs/bert runs/w2v --task homograph\n"
        "  textdecade eval compare runs/mt-a runs/mt-b --task bleu --source t.de --reference t.en"
        "\n\nanalogy (and similarity) compare on the questions (pairs) both models answered, "
        "and say how many; other tasks refuse items that differ.",
        cmd_eval_compare,
        computes=True,
    )
    p.add_argument("run_a", metavar="RUN_A", help="a run directory, HF directory or vectors file")
    p.add_argument("run_b", metavar="RUN_B")
    p.add_argument(
        "--task", choices=["homograph", "analogy", "similarity", "wic", "bleu"], required=True
    )
    p.add_argument("--data", nargs="+", help="the task's data (as its own eval command)")
    p.add_argument("--restrict-vocab", type=NON_NEGATIVE, help="analogy: default 30000; 0 = all")
    p.add_argument("--layers", choices=["last", "last4"], default="last")
    p.add_argument("--max-per-sense", type=POSITIVE, help="homograph: cap of training instances")
    p.add_argument("--max-test-per-sense", type=POSITIVE, help="homograph: cap of test instances")
    p.add_argument("--source", help="bleu: source sentences")
    p.add_argument("--reference", help="bleu: reference translations")
    p.add_argument("--beam", type=POSITIVE, default=4)
    p.add_argument("--max-lines", type=POSITIVE, default=None)
    p.add_argument("--device", help=DEVICE_HELP)
    p.add_argument("--format", choices=["table", "json"], default="table")
    _ci_arg(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars on stderr")


def _register_embed(sub) -> None:
    """``textdecade embed``."""
    p = _add(
        sub,
        "embed",
        "embed texts (one per line) with any model of the decade, or save word vectors",
        "examples:\n  textdecade embed runs/bert-tiny --input texts.txt -o vectors.npy\n"
        "  cat texts.txt | textdecade embed runs/w2v > vectors.jsonl\n"
        "  textdecade embed runs/w2v --word-vectors w2v.bin      # gensim reads it\n"
        "  textdecade embed runs/glove --words king queen",
        cmd_embed,
        computes=True,
    )
    p.add_argument("run", help="a run directory, a HF BERT/GPT-2 directory, or a hub id")
    p.add_argument("--input", help="a text file, one text per line (default: stdin)")
    p.add_argument("-o", "--output", help=".npy or .jsonl (default: JSON lines on stdout)")
    p.add_argument("--batch-size", type=POSITIVE, default=64)
    p.add_argument("--normalize", action="store_true", help="unit-length vectors")
    p.add_argument("--pooling", choices=["mean", "cls", "last"], help="default: the model's")
    p.add_argument("--device", help=DEVICE_HELP)
    p.add_argument(
        "--word-vectors",
        metavar="FILE",
        help="save static word vectors (.txt/.bin word2vec format, .safetensors)",
    )
    p.add_argument("--words", nargs="+", help="print these words' vectors")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars on stderr")


def _register_interop(sub) -> None:
    """``textdecade export hf`` and ``textdecade import hf``."""
    for verb, help_text, handler in (
        ("export", "export a BERT or GPT run to a HF transformers directory", cmd_export_hf),
        ("import", "import a HF BERT or GPT-2 directory as a textdecade run", cmd_import_hf),
    ):
        top = sub.add_parser(verb, help=help_text, description=help_text)
        top_sub = top.add_subparsers(dest=f"{verb}_format", metavar="FORMAT", required=True)
        example = (
            "textdecade export hf runs/gpt-tiny -o gpt-hf"
            if verb == "export"
            else "textdecade import hf path/to/bert -o runs/bert-imported"
        )
        p = _add(top_sub, "hf", help_text, "example:\n  " + example, handler)
        if verb == "export":
            p.add_argument("run", help="a BERT or GPT run directory")
            p.add_argument("-o", "--output", required=True, help="the HF directory to write")
        else:
            p.add_argument("directory", help="a HF model directory (config.json + weights)")
            p.add_argument("-o", "--output", required=True, help="the run directory to write")
        p.add_argument(
            "--overwrite", action="store_true", help="replace what the output directory holds"
        )


def _register_generate(sub) -> None:
    """``textdecade generate``."""
    p = _add(
        sub,
        "generate",
        "sample text from a GPT run (KV cache, temperature, top-k, top-p)",
        'example:\n  textdecade generate runs/gpt-tiny "The river bank" --max-new-tokens 80',
        cmd_generate,
        computes=True,
    )
    p.add_argument("run", help="a GPT run directory")
    p.add_argument("prompt", help="the text to continue")
    p.add_argument("--max-new-tokens", type=NON_NEGATIVE, default=200)
    p.add_argument("--temperature", type=_positive_float, default=0.8)
    p.add_argument("--top-k", type=NON_NEGATIVE, default=200, help="0 turns top-k off")
    p.add_argument("--top-p", type=_probability, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--no-stream", action="store_true", help="print the text at the end")
    p.add_argument("--device", help=DEVICE_HELP)


def _register_decade(sub) -> None:
    """``textdecade decade``."""
    p = _add(
        sub,
        "decade",
        "train all the families on one corpus and compare them in one table",
        "examples:\n  textdecade decade                      # built-in sample, tiny preset, "
        "~15 min on 2 CPU cores\n  textdecade decade --corpus corpus/ --preset small -o decade-small "
        "--homograph-data CoarseWSD-20/\n  textdecade decade --families word2vec bert "
        "--set bert.train.steps=200",
        cmd_decade,
    )
    _add_corpus_args(p)
    p.add_argument("--preset", default="tiny", choices=["tiny", "small", "base"])
    p.add_argument(
        "--families",
        nargs="+",
        metavar="FAMILY",
        help="a subset, e.g. word2vec bert (default: all)",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="[FAMILY.]SECTION.KEY=VALUE",
        help="override a setting for one family (gpt.train.steps=100) or all",
    )
    p.add_argument("--homograph-data", help="a CoarseWSD-20 folder (default: the built-in suite)")
    p.add_argument(
        "--seeds",
        type=POSITIVE,
        default=1,
        help="train each family N times with consecutive seeds: mean ± std beside the "
        "within-run intervals (default: 1)",
    )
    p.add_argument(
        "--minutes",
        type=_positive_float,
        help="give every family the same wall-clock training budget instead of its "
        "preset's steps (the table then shows what each step buys for the same time)",
    )
    p.add_argument("-o", "--output", default="decade", help="output directory (default: decade)")
    p.add_argument("--device", help=DEVICE_HELP)
    p.add_argument(
        "--resume", action="store_true", help="continue a report made with other settings"
    )
    p.add_argument("--overwrite", action="store_true", help="replace the report in the directory")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _register_lab(sub) -> None:
    """``textdecade lab``."""
    from textdecade.lab.experiments import EXPERIMENTS
    from textdecade.lab.extras import EXTRAS, add_arguments

    papers = {**{e.name: e.paper for e in EXPERIMENTS.values()}, **EXTRAS}
    listing = "\n".join(f"  {name:<11} {paper}" for name, paper in papers.items())
    p = _add(
        sub,
        "lab",
        "rerun one of the decade's deep-learning lessons as an experiment with a report",
        f"experiments:\n{listing}\n\nexamples:\n  textdecade lab depth                 "
        "# GPT, tiny preset, 3 seeds, built-in sample\n  textdecade lab optimizer --family "
        "bert --seeds 2 -o lab-opt\n  textdecade lab norm --preset small --device cuda\n"
        "  textdecade lab lottery --sparsities 0.5,0.75,0.9 --rewind-step 15\n"
        "  textdecade lab search --trials 24 --space n_layers=2,4 lr=1e-3:1e-2\n"
        "  textdecade lab double-descent --widths 4 16 64 256",
        cmd_lab,
    )
    p.add_argument("experiment", metavar="EXPERIMENT", help=", ".join(papers))
    _add_corpus_args(p)
    p.add_argument("--family", help="gpt (default), bert, transformer or seq2seq")
    p.add_argument("--preset", default="tiny", choices=["tiny", "small"])
    p.add_argument("--seeds", type=POSITIVE, default=3, help="runs per variant (default: 3)")
    p.add_argument("--variants", nargs="+", metavar="NAME", help="a subset of the variants")
    p.add_argument(
        "--depths",
        nargs="+",
        type=int,
        metavar="N",
        help="layer counts instead of the experiment's",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="SECTION.KEY=VALUE",
        help="override a setting of every cell",
    )
    p.add_argument("-o", "--output", help="output directory (default: lab-EXPERIMENT)")
    p.add_argument("--device", help=DEVICE_HELP)
    p.add_argument("--resume", action="store_true", help="continue a run made with other settings")
    p.add_argument(
        "--overwrite", action="store_true", help="replace the experiment in the directory"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    add_arguments(p)


def _register_translate(sub) -> None:
    """``textdecade translate``."""
    p = _add(
        sub,
        "translate",
        "translate with a seq2seq or Transformer run (greedy or beam search)",
        'example:\n  textdecade translate runs/mt "Ein Mann fährt Fahrrad ." --beam 4',
        cmd_translate,
        computes=True,
    )
    p.add_argument("run", help="a seq2seq or transformer run directory")
    p.add_argument("texts", nargs="*", help="sentences to translate")
    p.add_argument("--input", help="a file of sentences, one per line")
    p.add_argument("--beam", type=POSITIVE, default=4, help="beam size (1 = greedy)")
    p.add_argument("--length-penalty", type=float, default=0.6, help="GNMT length penalty alpha")
    p.add_argument("--max-len", type=POSITIVE, default=None)
    p.add_argument("--device", help=DEVICE_HELP)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars on stderr")


def _register_plot(sub) -> None:
    """``textdecade plot [curves|attention|embeddings]``."""
    p = _add(
        sub,
        "plot",
        "plot a run's curves, an attention map (translation or GPT/BERT/XL), or word vectors",
        "examples:\n  textdecade plot runs/gpt-tiny                      # loss and lr curves\n"
        '  textdecade plot attention runs/mt "Ein Mann fährt Fahrrad ." -o attn.png\n'
        '  textdecade plot attention runs/bert-tiny "The river bank" --layer 1 --head mean\n'
        "  textdecade plot embeddings runs/w2v --words king queen man woman -o map.png",
        cmd_plot,
        computes=True,
    )
    p.add_argument(
        "what",
        nargs="+",
        metavar="[KIND] RUN [SENTENCE]",
        help=f"KIND is one of {', '.join(PLOT_KINDS)} (default: curves)",
    )
    p.add_argument("-o", "--output", help="output directory (curves) or PNG file")
    p.add_argument("--target", help="attention: force this target text instead of decoding")
    p.add_argument("--beam", type=POSITIVE, default=1, help="attention: beam size when decoding")
    p.add_argument(
        "--layer",
        type=int,
        default=None,
        help="attention: the layer, from 0 (negative counts back; GPT/BERT/XL default: the last, "
        "translation default: every layer)",
    )
    p.add_argument(
        "--head",
        type=_head,
        default=None,
        help="attention: the head, from 0, or mean (GPT/BERT/XL default: 0)",
    )
    p.add_argument("--words", nargs="+", help="embeddings: the words to map")
    p.add_argument(
        "--method", choices=["pca", "tsne"], default="pca", help="embeddings: projection"
    )


def _eval_parser(ev_sub, name, help_text, example, handler):
    """One ``textdecade eval TASK`` parser with the arguments every task shares."""
    p = _add(ev_sub, name, help_text, "example:\n  " + example, handler, computes=True)
    p.add_argument(
        "models",
        nargs="+",
        metavar="RUN_OR_VECTORS",
        help="run directories, HF model directories or vectors files "
        "(.txt/.vec/.bin/.safetensors); several give one side-by-side table",
    )
    p.add_argument("--device", help=DEVICE_HELP)
    p.add_argument("--format", choices=["table", "json", "csv"], default="table")
    _ci_arg(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars on stderr")
    return p


def _ci_arg(p: argparse.ArgumentParser) -> None:
    """``--ci LEVEL``: checked by the command (one line and exit 2 outside [0, 1))."""
    p.add_argument(
        "--ci",
        default="0.95",
        metavar="LEVEL",
        help="confidence level of the bootstrap intervals printed as value [low, high] "
        "(default 0.95; 0 turns them off)",
    )


def _vectors_args(p: argparse.ArgumentParser) -> None:
    """How a contextual model gives word vectors to the word-level tasks."""
    p.add_argument(
        "--vectors",
        choices=["input", "context"],
        default="input",
        help="contextual models: input-embedding vectors, or states averaged "
        "over a corpus sample (Bommasani et al. 2020)",
    )
    _add_corpus_args(p)


#: The subcommands, in the order ``textdecade --help`` lists them.
REGISTER = (
    _register_tokenizer,
    _register_data,
    _register_pretrain,
    _register_eval,
    _register_embed,
    _register_interop,
    _register_generate,
    _register_decade,
    _register_lab,
    _register_translate,
    _register_plot,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``textdecade`` parser: each subcommand registers its own arguments."""
    parser = _Parser(
        prog="textdecade",
        description="A decade of NLP on one tokenizer, one engine, one evaluation suite: "
        "Word2Vec, GloVe, attention seq2seq, the Transformer, BERT and GPT.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="start with:  textdecade decade   (every family on the built-in sample)",
    )
    parser.add_argument("--version", action="version", version=f"textdecade {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in REGISTER:
        register(sub)
    return parser


def _one_line_warnings() -> None:
    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ARG001
        print(f"textdecade: warning: {message}", file=sys.stderr)

    warnings.showwarning = show


def _use_free_cores() -> None:
    """Lower torch's thread count to the cores other work leaves free (pretrain/cpu_share):
    beside a busy process, two threads waiting on each other at every barrier ran several
    times slower than one."""
    import torch

    from textdecade.pretrain.cpu_share import threads_for_free_cores

    torch.set_num_threads(threads_for_free_cores(torch.get_num_threads())[0])


def _error_line(text: str) -> None:
    """``text`` on stderr as a line of its own: a progress bar the failure interrupted (a
    corpus read stopped mid-pass) is closed first, so its last state ends its line."""
    if "tqdm" in sys.modules:
        from tqdm import tqdm

        for bar in list(getattr(tqdm, "_instances", ())):
            bar.close()
    print(text, file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``textdecade`` console script and ``python -m textdecade``."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage mistake (2, one line already printed)
        return int(exc.code or 0)
    _one_line_warnings()
    if getattr(args, "computes", False):
        _use_free_cores()
    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        stopped = isinstance(exc, Interrupted)
        _error_line(f"textdecade: {'' if stopped else 'error: '}{exc}")
        return 130 if stopped else 2
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        name = exc.filename if exc.filename is not None else ""
        _error_line(f"textdecade: error: {exc.strerror or exc}: {name}".rstrip(": "))
        return 2
    except KeyboardInterrupt:
        _error_line("textdecade: interrupted")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a full disk is the user's to fix; anything else is a bug
        if not is_disk_full(exc):
            raise
        print(
            "textdecade: error: no space left on device; files written before are intact "
            "(every write is atomic): free some space and run the command again",
            file=sys.stderr,
        )
        return 2


def run() -> None:
    """The process entry point (console script, ``python -m textdecade``): :func:`main`,
    then exit. A run stopped by a signal (exit 130) leaves without interpreter
    finalization: a Ctrl-C inside the native tokenizer trainer can leave its threads in a
    state where finalization aborts the process ("FATAL: exception not rethrown", seen 1
    run in 3), and by then the run directory is cleaned and every file written atomically.
    """
    code = main()
    if code == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
