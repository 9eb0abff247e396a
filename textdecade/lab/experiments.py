"""The decade's lessons as grids of engine runs: what each experiment varies, and why.

An experiment is data, not code: variants (each a list of ``--set`` overrides of the
swappable blocks in :mod:`textdecade.models.blocks` or of the optimizer), optionally
crossed with depths, and for ``optimizer`` a learning-rate sweep per variant. Every cell
of the grid is one ordinary run of the one Trainer (:mod:`textdecade.lab.runner`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from textdecade.errors import UserError

TRANSFORMERS = ("gpt", "bert", "transformer")
NEURAL = (*TRANSFORMERS, "seq2seq")


@dataclass(frozen=True)
class Variant:
    """One arm of an experiment: a name (for ``--variants`` and the cell directories),
    what it sets, and how the report calls it."""

    name: str
    overrides: tuple[str, ...]
    label: str = ""


@dataclass(frozen=True)
class Experiment:
    """A grid of runs.

    Attributes:
        name: the CLI name (``textdecade lab NAME``).
        paper: the result it reproduces, one line for ``--help`` and the report.
        question: what the report answers.
        families: the families it applies to (the first is the default).
        variants: the arms.
        depths: ``model.n_layers`` values crossed with every variant (empty: the preset's).
        sweep: variant name -> learning rates tried with the first seed; the others run
            at the best one (``optimizer``, so each is compared at its own best rate).
    """

    name: str
    paper: str
    question: str
    families: tuple[str, ...]
    variants: tuple[Variant, ...]
    depths: tuple[int, ...] = ()
    sweep: dict[str, tuple[float, ...]] = field(default_factory=dict)


def _v(name: str, *overrides: str, label: str = "") -> Variant:
    return Variant(name, tuple(overrides), label or name)


NORM_NAMES = {"batchnorm": "BatchNorm", "layernorm": "LayerNorm", "rmsnorm": "RMSNorm"}
NAIVE_INIT = ("model.init=normal", "model.init_std=1.0")
#: Every piece the decade replaced, together (Glorot & Bengio 2010's starting point).
WITHOUT_LESSONS = (
    *NAIVE_INIT,
    "model.activation=sigmoid",
    "model.residual=false",
    "model.norm_type=none",
)
WITH_LESSONS = (
    "model.init=xavier_uniform",
    "model.activation=gelu",
    "model.residual=true",
    "model.norm_type=layernorm",
    "model.norm=pre",
)

EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in (
        Experiment(
            "init",
            "Glorot & Bengio 2010 (Xavier), He et al. 2015 (Kaiming): how weights start",
            "Which initialisation lets a deeper stack learn, and what do its gradients look "
            "like layer by layer at step 1?",
            NEURAL,
            (
                _v("naive", *NAIVE_INIT, label="naive N(0, 1)"),
                _v("small", "model.init=normal", "model.init_std=0.01", label="naive N(0, 0.01)"),
                _v("xavier-uniform", "model.init=xavier_uniform", label="Xavier uniform"),
                _v("xavier-normal", "model.init=xavier_normal", label="Xavier normal"),
                _v("kaiming", "model.init=kaiming_normal", label="Kaiming normal"),
                _v("default", "model.init=default", label="the family's own scaled init"),
            ),
            depths=(2, 8),
        ),
        Experiment(
            "activation",
            "Glorot, Bordes & Bengio 2011: rectifiers against sigmoid, tanh and softplus",
            "Which hidden nonlinearity trains fastest, and which saturate or die?",
            NEURAL,
            tuple(
                _v(name, f"model.activation={name}")
                for name in ("sigmoid", "tanh", "softplus", "relu", "gelu")
            ),
        ),
        Experiment(
            "optimizer",
            "Tieleman & Hinton 2012 (RMSProp), Kingma & Ba 2014 (Adam), Loshchilov & Hutter "
            "2017 (AdamW) against SGD with and without momentum",
            "At each optimizer's best learning rate, which reaches the lowest loss in the "
            "same steps?",
            NEURAL,
            (
                # Weight decay only where it is part of the method (AdamW's decoupled decay);
                # an L2 term on the others would be a second variable.
                _v("sgd", "train.optimizer=sgd", "train.weight_decay=0"),
                _v("momentum", "train.optimizer=momentum", "train.weight_decay=0"),
                _v("rmsprop", "train.optimizer=rmsprop", "train.weight_decay=0"),
                _v("adam", "train.optimizer=adam", "train.weight_decay=0"),
                _v("adamw", "train.optimizer=adamw", "train.weight_decay=0.1"),
            ),
            sweep={
                "sgd": (0.1, 0.3, 1.0, 3.0),
                # Measured at the tiny budget: the best rates of the first grids (0.01-0.3,
                # 1e-4-3e-3) sat at their top edges, so both grids go one step higher.
                "momentum": (0.03, 0.1, 0.3, 1.0),
                "rmsprop": (3e-4, 1e-3, 3e-3, 1e-2),
                "adam": (3e-4, 1e-3, 3e-3, 1e-2),
                "adamw": (3e-4, 1e-3, 3e-3, 1e-2),
            },
        ),
        Experiment(
            "residual",
            "He et al. 2016: deep residual learning (the degradation problem)",
            "Does a plain stack get worse as it deepens, and does a residual one?",
            TRANSFORMERS,
            (
                _v("residual", "model.residual=true", label="residual"),
                _v("plain", "model.residual=false", label="plain (no skip connections)"),
            ),
            depths=(2, 4, 8, 16),
        ),
        Experiment(
            "norm",
            "Ioffe & Szegedy 2015 (BatchNorm), Ba et al. 2016 (LayerNorm), Zhang & Sennrich "
            "2019 (RMSNorm), Xiong et al. 2020 (pre- vs post-norm)",
            "Which normalisation, placed where, trains the stack best?",
            TRANSFORMERS,
            (
                _v("none", "model.norm_type=none", "model.norm=pre", label="no norm"),
                *(
                    _v(
                        f"{kind}-{place}",
                        f"model.norm_type={kind}",
                        f"model.norm={place}",
                        label=f"{NORM_NAMES[kind]}, {place}-norm",
                    )
                    for kind in ("batchnorm", "layernorm", "rmsnorm")
                    for place in ("pre", "post")
                ),
            ),
        ),
        Experiment(
            "depth",
            "The decade's story in one figure: the same model deepened with and without "
            "its lessons together",
            "With naive init, sigmoid, no residuals and no norm, does depth help or hurt; "
            "and with Xavier init, GELU, residuals and LayerNorm?",
            TRANSFORMERS,
            (
                _v("without", *WITHOUT_LESSONS, label="without the lessons"),
                _v("with", *WITH_LESSONS, label="with the lessons"),
            ),
            depths=(2, 4, 8, 16),
        ),
    )
}


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``; one line naming the choices otherwise."""
    if name not in EXPERIMENTS:
        raise UserError(f"unknown experiment '{name}' (choose from: {', '.join(EXPERIMENTS)})")
    return EXPERIMENTS[name]


def check_family(experiment: Experiment, family: str | None) -> str:
    """``family`` (default: the experiment's first) if the experiment applies to it."""
    family = family or experiment.families[0]
    if family not in experiment.families:
        raise UserError(
            f"lab {experiment.name} does not apply to {family} "
            f"(choose from: {', '.join(experiment.families)})"
        )
    return family
