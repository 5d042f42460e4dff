"""What every conditioner hands the network: the FiLM context and, where it has one, regime logits."""

from __future__ import annotations

from dataclasses import dataclass

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


def check_size(module: nn.Module, cap: int, name: str, fix: str) -> None:
    """Refuse a sub-module over its design parameter cap."""
    n = sum(p.numel() for p in module.parameters())
    if n > cap:
        raise ConfigError(f"the {name} has {n:,} parameters, over its design cap of {cap:,}. Fix: lower {fix}.")
