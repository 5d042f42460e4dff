"""Per-symbol conditioning: HRM's puzzle-id embedding, kept as the baseline."""

from __future__ import annotations

from torch import Tensor, nn

from dualhrq.errors import ConfigError
from dualhrq.models.conditioning.base import Conditioning, PatternBatch
from dualhrq.models.conditioning.film import FiLMGenerator
from dualhrq.models.layers import trunc_normal_


class SymbolConditioner(nn.Module):
    """A learned embedding per symbol id [B] -> FiLM, as HRM conditions on the puzzle id.

    It memorises symbols rather than market state, which the regime
    conditioner is meant to beat. The embedding starts at unit scale, not at
    zero: with the FiLM output layer at zero, a zero embedding would get no
    gradient ever.
    """

    per_bar = True  # the symbol is the same at every bar

    def __init__(self, *, n_symbols: int, hidden: int, n_layers: int, d_model: int, n_regime_features: int = 0) -> None:
        super().__init__()
        if n_symbols < 1:
            raise ConfigError(f"model/conditioning=puzzle_id needs at least one symbol, got n_symbols={n_symbols}.")
        self.embed = nn.Embedding(n_symbols, hidden)
        trunc_normal_(self.embed.weight, std=1.0)
        self.film = FiLMGenerator(hidden, hidden, n_layers, d_model)

    def encode(self, regime: Tensor, symbol: Tensor, patterns: PatternBatch | None = None) -> Conditioning:
        return Conditioning(context=self.embed(symbol))

    def forward(self, regime: Tensor, symbol: Tensor, patterns: PatternBatch | None = None) -> tuple[Tensor, Tensor]:
        """(gamma, beta) [B, n_layers, d_model] from ``symbol``; ``regime`` and ``patterns`` are unused."""
        return self.film(self.encode(regime, symbol).context)
