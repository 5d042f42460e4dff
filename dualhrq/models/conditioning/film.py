"""Feature-wise linear modulation (Perez et al. 2018, "FiLM") of the L-module."""

from __future__ import annotations

from torch import Tensor, nn

from dualhrq.models.layers import Linear


class FiLMGenerator(nn.Module):
    """Map a context [B, C] to per-layer (gamma, beta), each [B, n_layers, d_model]; a context per bar
    [B, T, C] gives one (gamma, beta) per bar, [B, T, n_layers, d_model] (dense supervision: each bar is
    modulated by its own regime, so no bar sees a later bar's regime through FiLM).

    The MLP predicts (delta, beta) with gamma = 1 + delta, and its last layer
    starts at zero, so an untrained conditioner is exactly the identity and
    conditioning can only start to matter once it has learned something.
    """

    def __init__(self, context_dim: int, hidden: int, n_layers: int, d_model: int) -> None:
        super().__init__()
        self.n_layers, self.d_model = n_layers, d_model
        self.net = nn.Sequential(
            Linear(context_dim, hidden, bias=True), nn.SiLU(), Linear(hidden, 2 * n_layers * d_model, bias=True)
        )
        nn.init.zeros_(self.net[-1].weight)

    def forward(self, context: Tensor) -> tuple[Tensor, Tensor]:
        delta, beta = self.net(context).unflatten(-1, (2, self.n_layers, self.d_model)).unbind(-3)
        return 1.0 + delta, beta
