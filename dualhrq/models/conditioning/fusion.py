"""Regime + retrieved patterns: both contexts fused into the L-module's FiLM (the ``regime_rag`` variant)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from dualhrq.config import positive_int
from dualhrq.models.conditioning.base import Conditioning, PatternBatch, require_regime_features
from dualhrq.models.conditioning.film import FiLMGenerator
from dualhrq.models.conditioning.pooling import PatternPooling
from dualhrq.models.conditioning.regime import RegimeClassifier
from dualhrq.patterns.library import token_width


class RegimeRAGConditioner(nn.Module):
    """Context = [regime logits, pooled pattern context (flattened), retrieval-available flag] -> FiLM.

    When retrieval failed open (``patterns`` is None) the pattern part is zero
    and the flag 0, so the FiLM generator sees regime-only conditioning and
    can tell it apart from a real retrieval.
    """

    per_bar = False  # retrieval is point-in-time at the decision bar only, so no dense supervision

    def __init__(self, *, n_regime_features: int, n_regimes: int, pattern_dim: int, scales: Sequence[int],
                 pool_queries: int, hidden: int, n_layers: int, d_model: int, n_symbols: int = 0) -> None:
        super().__init__()
        require_regime_features(n_regime_features, "regime_rag")
        positive_int(pool_queries, "conditioning.module.pool_queries")
        self.classifier = RegimeClassifier(n_regime_features, n_regimes, hidden)
        self.pooling = PatternPooling(token_width(pattern_dim, len(scales)), hidden, pool_queries)
        self.pattern_dim = pool_queries * hidden
        self.film = FiLMGenerator(n_regimes + self.pattern_dim + 1, hidden, n_layers, d_model)

    def encode(self, regime: Tensor, symbol: Tensor, patterns: PatternBatch | None = None) -> Conditioning:
        logits = self.classifier(regime)
        if patterns is None:
            pooled = logits.new_zeros(len(logits), self.pattern_dim)
            available = logits.new_zeros(len(logits), 1)
        else:
            pooled = self.pooling(patterns).flatten(1)
            available = patterns.mask.any(dim=1, keepdim=True).to(logits.dtype)
        return Conditioning(context=torch.cat([logits, pooled, available], dim=1), regime_logits=logits)

    def forward(self, regime: Tensor, symbol: Tensor, patterns: PatternBatch | None = None) -> tuple[Tensor, Tensor]:
        """(gamma, beta) [B, n_layers, d_model]; ``symbol`` is unused."""
        return self.film(self.encode(regime, symbol, patterns).context)
