"""Per-symbol conditioning: HRM's puzzle-id embedding, kept as the baseline."""

from __future__ import annotations

from torch import Tensor, nn

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

    def __init__(self, n_symbols: int, dim: int, *, hidden: int, n_layers: int, d_model: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(n_symbols, dim)
        trunc_normal_(self.embed.weight, std=1.0)
        self.film = FiLMGenerator(dim, hidden, n_layers, d_model)

    def encode(self, regime: Tensor, symbol: Tensor, patterns: PatternBatch | None = None) -> Conditioning:
        return Conditioning(context=self.embed(symbol))

    def forward(self, regime: Tensor, symbol: Tensor, patterns: PatternBatch | None = None) -> tuple[Tensor, Tensor]:
        """(gamma, beta) [B, n_layers, d_model] from ``symbol``; ``regime`` and ``patterns`` are unused."""
        return self.film(self.encode(regime, symbol).context)
