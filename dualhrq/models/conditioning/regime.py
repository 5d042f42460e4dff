"""Regime conditioning: the market state at decision time sets the L-module's FiLM."""

from __future__ import annotations

from torch import Tensor, nn

from dualhrq.models.conditioning.film import FiLMGenerator
from dualhrq.models.layers import Linear


class RegimeConditioner(nn.Module):
    """Encode the regime-feature vector [B, R] into a context [B, hidden], then FiLM.

    Unlike a per-symbol embedding it uses no identifier, so it transfers to
    symbols never seen in training.
    """

    def __init__(self, n_regime_features: int, hidden: int, *, n_layers: int, d_model: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(Linear(n_regime_features, hidden, bias=True), nn.SiLU())
        self.film = FiLMGenerator(hidden, hidden, n_layers, d_model)

    def forward(self, regime: Tensor, symbol: Tensor) -> tuple[Tensor, Tensor]:
        """(gamma, beta) [B, n_layers, d_model] from ``regime``; ``symbol`` is unused."""
        return self.film(self.encoder(regime))
