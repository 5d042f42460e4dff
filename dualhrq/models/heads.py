"""Trading heads read from the H state at the decision bar."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dualhrq.models.layers import Linear


def _mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(Linear(d_in, hidden, bias=True), nn.SiLU(), Linear(hidden, d_out, bias=True))


class TradingHeads(nn.Module):
    """A position head, a return-forecast head and, with ACT, the (halt, continue) Q head.

    Separate MLPs so the two losses (position P&L, forecast likelihood) do not
    compete for one hidden layer. The Q head is linear and starts at
    weight 0, bias -5, as in the HRM reference: both logits equal, so an
    untrained model never halts early and its Q values start near zero.
    """

    def __init__(self, d_in: int, hidden: int, q_head: bool = False) -> None:
        super().__init__()
        self.signal = _mlp(d_in, hidden, 1)
        self.forecast = _mlp(d_in, hidden, 2)
        self.q = None
        if q_head:
            self.q = Linear(d_in, 2, bias=True)
            nn.init.zeros_(self.q.weight)
            nn.init.constant_(self.q.bias, -5.0)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """From h [B, d_in]: position [B] in [-1, 1], (mean, log-variance) [B, 2] of the
        standardised forward return, and Q logits [B, 2] (None without ACT); from every bar's h [B, T, d_in]
        the same per bar ([B, T], [B, T, 2], [B, T, 2]). All fp32: under bf16 autocast
        the losses and the traded position keep full precision."""
        q = None if self.q is None else self.q(h).float()
        return torch.tanh(self.signal(h).float()).squeeze(-1), self.forecast(h).float(), q
