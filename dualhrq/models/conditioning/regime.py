"""Regime conditioning: a small classifier reads the market state at decision time; its logits set FiLM."""

from __future__ import annotations

from torch import Tensor, nn

from dualhrq.models.conditioning.base import Conditioning, PatternBatch, check_size, require_regime_features
from dualhrq.models.conditioning.film import FiLMGenerator
from dualhrq.models.layers import Linear

REGIME_CLASSIFIER_MAX = 100_000  # design cap on the classifier's parameters


class RegimeClassifier(nn.Module):
    """Regime features [B, F] -> regime logits [B, R]; trained as an auxiliary head on the fold's
    unsupervised regime labels (see ``dualhrq.training.regime_labels``) and through the FiLM path."""

    def __init__(self, n_regime_features: int, n_regimes: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(Linear(n_regime_features, hidden, bias=True), nn.SiLU(),
                                 Linear(hidden, hidden, bias=True), nn.SiLU(), Linear(hidden, n_regimes, bias=True))
        check_size(self, REGIME_CLASSIFIER_MAX, "regime classifier",
                   "model.net.cond_hidden or model.conditioning.regimes")

    def forward(self, regime: Tensor) -> Tensor:
        return self.net(regime)


class RegimeConditioner(nn.Module):
    """FiLM from the regime logits alone.

    Unlike a per-symbol embedding it uses no identifier, so it transfers to
    symbols never seen in training.
    """

    per_bar = True  # reads one bar's regime features: each bar of a window can be conditioned on its own

    def __init__(self, *, n_regime_features: int, n_regimes: int, hidden: int, n_layers: int, d_model: int,
                 n_symbols: int = 0) -> None:
        super().__init__()
        require_regime_features(n_regime_features, "regime")
        self.classifier = RegimeClassifier(n_regime_features, n_regimes, hidden)
        self.film = FiLMGenerator(n_regimes, hidden, n_layers, d_model)

    def encode(self, regime: Tensor, symbol: Tensor, patterns: PatternBatch | None = None) -> Conditioning:
        logits = self.classifier(regime)
        return Conditioning(context=logits, regime_logits=logits)

    def forward(self, regime: Tensor, symbol: Tensor, patterns: PatternBatch | None = None) -> tuple[Tensor, Tensor]:
        """(gamma, beta) [B, n_layers, d_model] from ``regime``; ``symbol`` and ``patterns`` are unused."""
        return self.film(self.encode(regime, symbol).context)
