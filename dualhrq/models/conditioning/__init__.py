"""Conditioning of the L-module: none, per-symbol (puzzle_id) or market regime."""

from __future__ import annotations

from torch import nn

from dualhrq.errors import ConfigError
from dualhrq.models.conditioning.film import FiLMGenerator
from dualhrq.models.conditioning.puzzle_id import SymbolConditioner
from dualhrq.models.conditioning.regime import RegimeConditioner

__all__ = ["CONDITIONING_KINDS", "FiLMGenerator", "RegimeConditioner", "SymbolConditioner", "build_conditioning",
           "check_conditioning"]

CONDITIONING_KINDS = ("none", "puzzle_id", "regime")


def check_conditioning(kind: str) -> None:
    """Refuse a ``model.conditioning`` value this version cannot build (no data needed)."""
    if kind == "regime_rag":
        raise ConfigError(
            "model.conditioning=regime_rag: the pattern-retrieval path is not available yet; "
            f"use one of {list(CONDITIONING_KINDS)}."
        )
    if kind not in CONDITIONING_KINDS:
        raise ConfigError(f"model.conditioning must be one of {list(CONDITIONING_KINDS)}, got {kind!r}.")


def build_conditioning(
    kind: str, *, n_regime_features: int, n_symbols: int, l_layers: int, l_dim: int, hidden: int
) -> nn.Module | None:
    """The conditioner named by ``model.conditioning``; None for "none"."""
    check_conditioning(kind)
    if kind == "none":
        return None
    if kind == "puzzle_id":
        if n_symbols < 1:
            raise ConfigError(f"model.conditioning=puzzle_id needs at least one symbol, got n_symbols={n_symbols}.")
        return SymbolConditioner(n_symbols, hidden, hidden=hidden, n_layers=l_layers, d_model=l_dim)
    if n_regime_features < 1:  # kind == "regime"
        raise ConfigError(
            "model.conditioning=regime needs regime features, got n_regime_features="
            f"{n_regime_features}; enable them in the data config or use model.conditioning=none."
        )
    return RegimeConditioner(n_regime_features, hidden, n_layers=l_layers, d_model=l_dim)
