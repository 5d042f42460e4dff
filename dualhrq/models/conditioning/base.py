"""What every conditioner hands the network: the FiLM context and, where it has one, regime logits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from torch import Tensor, nn

from dualhrq.errors import ConfigError


@dataclass
class PatternBatch:
    """Retrieved neighbours of a batch: token features [B, N, D] and which are real [B, N]."""

    tokens: Tensor
    mask: Tensor


@dataclass
class Conditioning:
    """``context`` [B, C] is the FiLM generator's input (what the mutual-information gate measures);
    ``regime_logits`` [B, R] feed the auxiliary regime loss (None for conditioners without a classifier)."""

    context: Tensor
    regime_logits: Tensor | None = None


class Conditioner(Protocol):
    """What a network needs of a conditioner: a context from the decision's inputs, and FiLM from it.
    ``per_bar``: ``encode`` also takes every bar's inputs ([B, T, R]) and gives a context per bar from that bar
    alone (what dense supervision needs); conditioners without it are refused there."""

    film: nn.Module
    per_bar: bool

    def encode(self, regime: Tensor, symbol: Tensor, patterns: PatternBatch | None = None) -> Conditioning: ...


class ConditionerFactory(Protocol):
    """``model.conditioning.module``: a partial that the network completes with its own sizes."""

    def __call__(self, *, n_regime_features: int, n_symbols: int, hidden: int, n_layers: int,
                 d_model: int) -> Conditioner: ...


def conditioning_group(group: object) -> Mapping[str, Any]:
    """``model.conditioning`` as the config group it must be (a mapping with a ``module``, null for none)."""
    if group is None:
        return {}
    if not isinstance(group, Mapping):
        raise ConfigError(f"model.conditioning is a config group, got the value {group!r}. "
                          "Fix: select it with model/conditioning=<none|puzzle_id|regime|regime_rag>.")
    return group


def check_size(module: nn.Module, cap: int, name: str, fix: str) -> None:
    """Refuse a sub-module over its design parameter cap."""
    n = sum(p.numel() for p in module.parameters())
    if n > cap:
        raise ConfigError(f"the {name} has {n:,} parameters, over its design cap of {cap:,}. Fix: lower {fix}.")


def require_regime_features(n_regime_features: int, name: str) -> None:
    if n_regime_features < 1:
        raise ConfigError(f"model/conditioning={name} needs regime features, got n_regime_features="
                          f"{n_regime_features}; enable them in the data config or use model/conditioning=none.")
