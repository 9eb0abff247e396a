"""The swappable parts of the neural blocks, built from config names.

A block (:mod:`textdecade.models.layers`) does not decide which normalisation, activation
or skip connection it uses: it receives them, as torchtune's layers do, so that the lab can
swap a norm or an activation with a config value instead of a branch. This module holds the
registries of those parts, the config fields that name them (:class:`NeuralConfig`,
:class:`BlockConfig`), the small builder that turns a config into parts
(:func:`block_parts`), and the one initialisation function every family applies
(:func:`init_weights_`).

Config names (one meaning each, in every family that has them):

    norm        "pre" | "post"        where each block's norms sit (Xiong et al. 2020)
    norm_type   "layernorm" | "rmsnorm" | "batchnorm" | "none"
    activation  "relu" | "gelu" | "gelu_tanh" | "tanh" | "sigmoid" | "softplus" | "silu"
    init        "default" (the family's paper init) | "xavier_uniform" | "xavier_normal" |
                "kaiming_uniform" | "kaiming_normal" | "normal" (N(0, init_std))
    residual    true | false          skip connections around every sublayer

Every norm module takes ``forward(x, mask=None)``: x (..., D) and an optional mask
(x.shape[:-1]) with 1 for real tokens and 0 for padding. Only batch normalisation reads it;
the others normalise each position on its own and ignore it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import ClassVar

import torch
from torch import nn

from textdecade.errors import ConfigError

__all__ = [
    "ACTIVATIONS",
    "INITS",
    "NORM_POSITIONS",
    "NORM_TYPES",
    "BlockConfig",
    "BlockParts",
    "LayerNorm",
    "MaskedBatchNorm",
    "NeuralConfig",
    "NoNorm",
    "NoResidual",
    "RMSNorm",
    "Residual",
    "block_parts",
    "check_choice",
    "init_normal_",
    "init_weights_",
    "init_xavier_",
    "make_activation",
    "make_norm",
    "scale_residual_init_",
]

# --------------------------------------------------------------------------- norms


class LayerNorm(nn.LayerNorm):
    """LayerNorm over the last dim (Ba et al. 2016); ``mask`` is accepted and not needed.

    Each position is normalised by its own mean and variance, so padding cannot leak in.
    A subclass of ``nn.LayerNorm``: same parameters, same state-dict names.
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(..., D) -> (..., D)."""
        return super().forward(x)


class RMSNorm(nn.RMSNorm):
    """x / RMS(x) * g (Zhang & Sennrich 2019): LayerNorm without the mean, nor a bias.

    Zhang & Sennrich found re-centring unnecessary and the cheaper norm as good; torch's
    ``nn.RMSNorm`` computes it. Per position, so ``mask`` is not needed.
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(..., D) -> (..., D)."""
        return super().forward(x)


class NoNorm(nn.Module):
    """The identity (``norm_type = "none"``): a block without normalisation."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return x


class MaskedBatchNorm(nn.Module):
    """Batch normalisation over the feature dim (Ioffe & Szegedy 2015), padding excluded.

    In training, each feature is normalised by the mean and (biased) variance over the
    batch's *real* positions: padding, whose states are meaningless, would otherwise pull
    the statistics towards whatever the pad embedding becomes, and make a text's states
    depend on how much padding it is batched with. Running averages of those statistics
    (momentum ``momentum``, the variance unbiased, as ``nn.BatchNorm1d``) normalise at eval.
    Statistics are per process, as ``nn.BatchNorm1d`` without ``SyncBatchNorm``.

    Args:
        d_model: D, the feature width.  eps: added to the variance.
        momentum: weight of the new batch in the running averages.
        bias: learn a shift beta (the scale gamma is always learnt).

    Shapes: x (..., D); mask x.shape[:-1] with 1 = real, 0 = padding (None: all real).
    """

    def __init__(self, d_model: int, eps: float = 1e-5, momentum: float = 0.1, bias=True):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model)) if bias else None
        self.register_buffer("running_mean", torch.zeros(d_model))
        self.register_buffer("running_var", torch.ones(d_model))

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def batch_stats(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        """Mean, biased variance (D,) and the count of the real positions of ``x``."""
        flat = x.reshape(-1, x.shape[-1]).float()  # (N, D); statistics in fp32 under autocast
        if mask is None:
            keep = flat.new_ones(flat.shape[0], 1)
        else:
            if mask.shape != x.shape[:-1]:
                raise ValueError(f"mask {tuple(mask.shape)} does not fit x {tuple(x.shape)}")
            keep = mask.reshape(-1, 1).to(flat.dtype)  # (N, 1)
        # Masked sums, not boolean indexing: the shapes stay static for torch.compile.
        n = keep.sum().clamp_min(1.0)
        mean = (flat * keep).sum(0) / n
        var = (((flat - mean) ** 2) * keep).sum(0) / n
        return mean, var, n

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(..., D) -> (..., D)."""
        if self.training:
            mean, var, n = self.batch_stats(x, mask)
            with torch.no_grad():
                unbiased = var * n / (n - 1).clamp_min(1.0)
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_var.lerp_(unbiased.detach(), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        y = (x.float() - mean) * torch.rsqrt(var + self.eps) * self.weight
        if self.bias is not None:
            y = y + self.bias
        return y.to(x.dtype)


#: norm_type -> constructor(d_model, eps, bias).
_NORMS: dict[str, Callable[..., nn.Module]] = {
    "layernorm": lambda d, eps, bias: LayerNorm(d, eps=eps, bias=bias),
    # no bias to drop: RMSNorm has only a gain
    "rmsnorm": lambda d, eps, bias: RMSNorm(d, eps=eps),
    "batchnorm": lambda d, eps, bias: MaskedBatchNorm(d, eps=eps, bias=bias),
    "none": lambda d, eps, bias: NoNorm(),
}
NORM_TYPES = tuple(_NORMS)
NORM_POSITIONS = ("pre", "post")
NORM_MODULES = (nn.LayerNorm, nn.RMSNorm, MaskedBatchNorm)


def make_norm(norm_type: str, eps: float = 1e-5, bias: bool = True) -> Callable[[int], nn.Module]:
    """A factory ``d_model -> norm module`` of kind ``norm_type`` (see the module docstring).

    Args:
        norm_type: one of :data:`NORM_TYPES`.  eps: the norms' epsilon.
        bias: a learnt shift where the norm has one (GPT's ``bias=False`` drops it).
    """
    check_choice("model.norm_type", norm_type, NORM_TYPES)
    return functools.partial(_NORMS[norm_type], eps=eps, bias=bias)


# --------------------------------------------------------------------------- activations

#: activation name -> module constructor (modules hold no weights: no state-dict change).
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,  # Vaswani et al. 2017; Glorot et al. 2011
    "gelu": nn.GELU,  # exact erf form (Hendrycks & Gimpel 2016; BERT)
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),  # GPT-2's "gelu_new"
    "tanh": nn.Tanh,  # Bahdanau et al. 2014's attention and deep output
    "sigmoid": nn.Sigmoid,  # the saturating unit Glorot & Bengio 2010 studied
    "softplus": nn.Softplus,
    "silu": nn.SiLU,  # x * sigmoid(x) (Elfwing et al. 2017; "swish")
}


def make_activation(name: str) -> nn.Module:
    """A new activation module called ``name`` (one of :data:`ACTIVATIONS`)."""
    check_choice("model.activation", name, tuple(ACTIVATIONS))
    return ACTIVATIONS[name]()


# --------------------------------------------------------------------------- residuals


class Residual(nn.Module):
    """x + f(x): the skip connection (He et al. 2016) around a sublayer."""

    def forward(self, x: torch.Tensor, fx: torch.Tensor) -> torch.Tensor:
        return x + fx


class NoResidual(nn.Module):
    """f(x) alone (``residual = false``): the plain deep network He et al. 2016 compare."""

    def forward(self, x: torch.Tensor, fx: torch.Tensor) -> torch.Tensor:
        return fx


# --------------------------------------------------------------------------- config


def check_choice(key: str, value: object, allowed: tuple) -> None:
    """A one-line ConfigError naming ``key``, ``value`` and ``allowed`` when it is not one."""
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not one of: {', '.join(map(str, allowed))}")


INITS = (
    "default",
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "normal",
)


@dataclass(frozen=True)
class NeuralConfig:
    """Fields every neural family has (seq2seq included); families override the defaults.

    Attributes:
        activation: the hidden nonlinearity (see :data:`ACTIVATIONS`).
        init: "default" is the family's paper init; the others apply to every weight
            matrix (see :func:`init_weights_`).
        init_std: the standard deviation of the normal inits ("normal", and GPT/BERT's
            "default").
    """

    #: field -> allowed values, checked by the one ``__post_init__`` below.
    CHOICES: ClassVar[dict[str, tuple]] = {
        "norm": NORM_POSITIONS,
        "norm_type": NORM_TYPES,
        "activation": tuple(ACTIVATIONS),
        "init": INITS,
    }

    activation: str = "gelu"
    init: str = "default"
    init_std: float = 0.02

    def __post_init__(self):
        for f in fields(self):
            if f.name in self.CHOICES:
                check_choice(f"model.{f.name}", getattr(self, f.name), self.CHOICES[f.name])
        if not self.init_std > 0:
            raise ConfigError(f"model.init_std must be positive, got {self.init_std}")


@dataclass(frozen=True)
class BlockConfig(NeuralConfig):
    """The block fields of the Transformer families (GPT, BERT, Transformer).

    Attributes:
        norm: "pre" puts a norm before each sublayer (GPT-2; Xiong et al. 2020) and one
            after the last block; "post" normalises after each residual sum (Vaswani et
            al. 2017; BERT).
        norm_type: which norm (see :data:`NORM_TYPES`); LayerNorm in all three papers.
        residual: skip connections around every sublayer (false: the plain stack).
    """

    norm: str = "post"
    norm_type: str = "layernorm"
    residual: bool = True


@dataclass(frozen=True)
class BlockParts:
    """What a block is built from, made once per model from its config.

    Attributes:
        norm: ``d_model -> norm module`` (a new module per call).
        activation: ``() -> activation module``.
        residual: ``() -> Residual or NoResidual``.
        pre: True for pre-norm blocks (``config.norm == "pre"``).
    """

    norm: Callable[[int], nn.Module]
    activation: Callable[[], nn.Module]
    residual: Callable[[], nn.Module]
    pre: bool

    def stack(
        self, block: type, n: int, d_model: int, n_heads: int, d_ff: int, dropout: float, **extra
    ) -> nn.ModuleList:
        """``n`` blocks of class ``block``, each given its own activation, norms and skips.

        ``extra`` goes to every block (``causal=True``, ``bias=False``, ...).
        """
        return nn.ModuleList(
            block(
                d_model,
                n_heads,
                d_ff,
                dropout,
                self.activation(),
                norm=self.norm,
                residual=self.residual(),
                **extra,
            )
            for _ in range(n)
        )

    def final_norm(self, d_model: int) -> nn.Module:
        """The norm that closes a pre-norm stack (its residual stream is un-normalised);
        post-norm blocks already end in one, so the identity."""
        return self.norm(d_model) if self.pre else NoNorm()


def block_parts(config: BlockConfig, eps: float = 1e-5, bias: bool = True) -> BlockParts:
    """The parts named by ``config`` (norm with epsilon ``eps`` and learnt shift ``bias``)."""
    return BlockParts(
        norm=make_norm(config.norm_type, eps, bias),
        activation=functools.partial(make_activation, config.activation),
        residual=Residual if config.residual else NoResidual,
        pre=config.norm == "pre",
    )


# --------------------------------------------------------------------------- init


def init_normal_(module: nn.Module, std: float = 0.02) -> None:
    """GPT/BERT init: Linear and Embedding weights ~ N(0, std), biases 0, LayerNorm 1/0."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, std)
        elif isinstance(m, nn.LayerNorm):
            if m.weight is not None:
                nn.init.ones_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def scale_residual_init_(
    module: nn.Module, n_layers: int, std: float = 0.02, suffix: str = "proj.weight"
) -> None:
    """GPT-2 (Radford et al. 2019): residual output projections ~ N(0, std / sqrt(2 L)).

    Each layer adds two residual branches (attention, MLP), so the residual stream's
    variance grows with 2L; scaling their last projections keeps it bounded at init.
    """
    for name, p in module.named_parameters():
        if name.endswith(suffix):
            nn.init.normal_(p, 0.0, std / math.sqrt(2 * n_layers))


def init_xavier_(module: nn.Module) -> None:
    """Xavier/Glorot uniform on every matrix (Vaswani et al. 2017's setup), biases 0."""
    for name, p in module.named_parameters():
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)
        elif name.endswith("bias"):
            nn.init.zeros_(p)


#: init scheme -> fill(matrix, std) for every weight of two or more dims.
_MATRIX_INITS: dict[str, Callable[[torch.Tensor, float], None]] = {
    # Glorot & Bengio 2010: Var = 2 / (fan_in + fan_out) keeps activations and gradients
    # of a linear (or tanh near 0) layer at the same scale forward and backward.
    "xavier_uniform": lambda p, std: nn.init.xavier_uniform_(p),
    "xavier_normal": lambda p, std: nn.init.xavier_normal_(p),
    # He et al. 2015: Var = 2 / fan_in makes up for ReLU zeroing half of its inputs.
    "kaiming_uniform": lambda p, std: nn.init.kaiming_uniform_(p, nonlinearity="relu"),
    "kaiming_normal": lambda p, std: nn.init.kaiming_normal_(p, nonlinearity="relu"),
    # the naive N(0, sigma): std 1.0 is Glorot & Bengio's N(0, 1), 0.01 the small one
    "normal": lambda p, std: nn.init.normal_(p, 0.0, std),
}


def init_weights_(
    model: nn.Module,
    scheme: str,
    std: float = 0.02,
    default: Callable[[nn.Module], None] | None = None,
) -> None:
    """Initialise ``model`` in place by ``scheme`` (one of :data:`INITS`).

    "default" calls the family's paper init ``default(model)``. Every other scheme fills
    each parameter of two or more dims (Linear, Embedding and GRU matrices) with
    :data:`_MATRIX_INITS` [scheme], zeroes the other vectors (biases) and resets norms to
    scale 1, shift 0; an embedding's padding row stays zero, as ``nn.Embedding`` keeps it.

    Args:
        model: the model (before weights are tied, so a tied matrix is drawn once).
        scheme: the init name.  std: the standard deviation of "normal".
        default: the family's own init.
    """
    check_choice("model.init", scheme, INITS)
    if scheme == "default":
        if default is not None:
            default(model)
        return
    fill = _MATRIX_INITS[scheme]
    for m in model.modules():
        if isinstance(m, NORM_MODULES):
            m.reset_parameters()
            continue
        for p in m.parameters(recurse=False):
            if p.dim() > 1:
                fill(p, std)
            else:
                nn.init.zeros_(p)
        if isinstance(m, nn.Embedding) and m.padding_idx is not None:
            with torch.no_grad():
                m.weight[m.padding_idx].zero_()
