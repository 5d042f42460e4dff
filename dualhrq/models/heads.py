"""Trading heads read from the H state at the decision bar."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dualhrq.models.layers import Linear


def _mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(Linear(d_in, hidden, bias=True), nn.SiLU(), Linear(hidden, d_out, bias=True))


class TradingHeads(nn.Module):
    """A position head and a return-forecast head, each a one-hidden-layer MLP.

    Separate MLPs so the two losses (position P&L, forecast likelihood) do not
    compete for one hidden layer.
    """

    def __init__(self, d_in: int, hidden: int) -> None:
        super().__init__()
        self.signal = _mlp(d_in, hidden, 1)
        self.forecast = _mlp(d_in, hidden, 2)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """From h [B, d_in]: position [B] in [-1, 1] and (mean, log-variance) [B, 2]
        of the standardised forward return."""
        return torch.tanh(self.signal(h)).squeeze(-1), self.forecast(h)
