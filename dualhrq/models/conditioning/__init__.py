"""Conditioning of the L-module: none, per-symbol (puzzle_id), market regime, or regime + retrieved patterns."""

from __future__ import annotations

from torch import nn

from dualhrq.errors import ConfigError, positive_int
from dualhrq.models.conditioning.base import Conditioning, PatternBatch
from dualhrq.models.conditioning.config import CondConfig
from dualhrq.models.conditioning.film import FiLMGenerator
from dualhrq.models.conditioning.fusion import RegimeRAGConditioner
from dualhrq.models.conditioning.puzzle_id import SymbolConditioner
from dualhrq.models.conditioning.regime import RegimeClassifier, RegimeConditioner
from dualhrq.models.conditioning.retrieval import PatternRetrieval

__all__ = ["CONDITIONING_KINDS", "Conditioning", "FiLMGenerator", "PatternBatch", "PatternRetrieval",
           "RegimeClassifier", "RegimeConditioner", "RegimeRAGConditioner", "SymbolConditioner",
           "DEFAULT_SIZES", "build_conditioning", "check_conditioning"]

CONDITIONING_KINDS = ("none", "puzzle_id", "regime", "regime_rag")
# sizes from conf/model/cond/default.yaml's defaults, for nets built without a model.cond
DEFAULT_SIZES = CondConfig().net_sizes()


def check_conditioning(kind: str) -> None:
    """Refuse a ``model.conditioning`` value this version cannot build (no data needed)."""
    if kind not in CONDITIONING_KINDS:
        raise ConfigError(f"model.conditioning must be one of {list(CONDITIONING_KINDS)}, got {kind!r}.")


def build_conditioning(
    kind: str, *, n_regime_features: int, n_symbols: int, l_layers: int, l_dim: int, hidden: int,
    n_regimes: int = DEFAULT_SIZES["n_regimes"], pattern_token_dim: int = DEFAULT_SIZES["pattern_token_dim"],
    pool_queries: int = DEFAULT_SIZES["pool_queries"],
) -> nn.Module | None:
    """The conditioner named by ``model.conditioning``; None for "none".

    ``n_regimes`` is ``model.cond.regimes``; ``pattern_token_dim`` the width of a
    retrieved neighbour's features (``regime_rag`` only) and ``pool_queries``
    the number P of pooled pattern contexts.
    """
    check_conditioning(kind)
    if kind == "none":
        return None
    if kind == "puzzle_id":
        if n_symbols < 1:
            raise ConfigError(f"model.conditioning=puzzle_id needs at least one symbol, got n_symbols={n_symbols}.")
        return SymbolConditioner(n_symbols, hidden, hidden=hidden, n_layers=l_layers, d_model=l_dim)
    if n_regime_features < 1:
        raise ConfigError(
            f"model.conditioning={kind} needs regime features, got n_regime_features="
            f"{n_regime_features}; enable them in the data config or use model.conditioning=none."
        )
    positive_int(n_regimes, "model.cond.regimes")
    if kind == "regime":
        return RegimeConditioner(n_regime_features, n_regimes, hidden, n_layers=l_layers, d_model=l_dim)
    positive_int(pattern_token_dim, "pattern_token_dim (from model.cond.patterns)")
    positive_int(pool_queries, "model.cond.patterns.pool_queries")
    return RegimeRAGConditioner(n_regime_features, n_regimes, hidden, token_dim=pattern_token_dim,
                                n_queries=pool_queries, n_layers=l_layers, d_model=l_dim)
