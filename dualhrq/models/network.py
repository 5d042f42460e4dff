"""DualHRQNet: conditioning -> FiLM on the L-module -> HRM -> trading heads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from dualhrq.errors import ConfigError, DataError, positive_int
from dualhrq.models.conditioning import DEFAULT_SIZES, PatternBatch, build_conditioning
from dualhrq.models.deq import RecursionConfig, SolverStats
from dualhrq.models.heads import TradingHeads
from dualhrq.models.hrm import HRM, HRMCarry, LevelSize
from dualhrq.models.layers import NORMS


@dataclass
class NetOutput:
    """One segment's outputs: position in [-1, 1], (mean, log-variance) of the standardised
    forward return, ACT's (halt, continue) logits, the detached carry and solver statistics."""

    signal: Tensor  # [B]
    forecast: Tensor  # [B, 2]
    q: Tensor | None = None  # [B, 2]
    carry: HRMCarry | None = None
    stats: SolverStats | None = None
    steps: Tensor | None = None  # [B] segments used per decision (set by the LightningModule)
    regime_logits: Tensor | None = None  # [B, R] from the regime classifier, for its auxiliary loss


def check_norm(norm: str, field: str) -> str:
    if norm not in NORMS:
        raise ConfigError(f"{field} must be one of {list(NORMS)}, got {norm!r}.")
    return norm


class DualHRQNet(nn.Module):
    """The whole network. The decision at bar t reads the H state at the window's last bar.

    ``h`` and ``l`` are ``{dim, layers, heads, ffn_hidden}`` mappings (config
    ``model.net.h`` / ``model.net.l``); ``conditioning`` is ``model.conditioning``.
    """

    recurrent = True  # carries state across deep-supervision segments

    def __init__(
        self,
        *,
        n_features: int,
        n_regime_features: int,
        n_symbols: int,
        conditioning: str,
        h: Mapping[str, int],
        l: Mapping[str, int],  # noqa: E741 - the paper's name for the low level
        h_cycles: int = 2,
        l_cycles: int = 2,
        cond_hidden: int = 64,
        head_hidden: int = 128,
        rope_base: float = 10000.0,
        norm: str = "post",
        recursion: Mapping[str, Any] | None = None,
        q_head: bool = False,
        n_regimes: int = DEFAULT_SIZES["n_regimes"],
        pattern_token_dim: int = DEFAULT_SIZES["pattern_token_dim"],
        pool_queries: int = DEFAULT_SIZES["pool_queries"],
    ) -> None:
        super().__init__()
        h_size = LevelSize.from_config(h, "model.net.h")
        l_size = LevelSize.from_config(l, "model.net.l")
        for name, value in [("n_features", n_features), ("h_cycles", h_cycles), ("l_cycles", l_cycles),
                            ("cond_hidden", cond_hidden), ("head_hidden", head_hidden)]:
            positive_int(value, f"model.net.{name}")
        if not rope_base > 0:
            raise ConfigError(f"model.net.rope_base must be positive, got {rope_base!r}.")

        self.n_features = n_features
        self.hrm = HRM(n_features=n_features, h=h_size, l=l_size, h_cycles=h_cycles, l_cycles=l_cycles,
                       rope_base=rope_base, norm=check_norm(norm, "model.net.norm"),
                       recursion=RecursionConfig.from_config(recursion))
        self.conditioning = build_conditioning(conditioning, n_regime_features=n_regime_features,
                                               n_symbols=n_symbols, l_layers=l_size.layers, l_dim=l_size.dim,
                                               hidden=cond_hidden, n_regimes=n_regimes,
                                               pattern_token_dim=pattern_token_dim, pool_queries=pool_queries)
        self.heads = TradingHeads(h_size.dim, head_hidden, q_head=q_head)

    def reset_carry(self, carry: HRMCarry | None, reset: Tensor, seq_len: int) -> HRMCarry:
        """``carry`` with the samples flagged in ``reset`` [B] back at the initial state."""
        init = self.hrm.initial_carry(len(reset), seq_len)
        if carry is None:
            return init
        m = reset.view(-1, 1, 1)
        return HRMCarry(z_H=torch.where(m, init.z_H, carry.z_H), z_L=torch.where(m, init.z_L, carry.z_L))

    def forward(self, x: Tensor, regime: Tensor, symbol: Tensor, carry: HRMCarry | None = None,
                patterns: PatternBatch | None = None) -> NetOutput:
        """One segment from ``carry`` (the initial state if None).

        x [B, T, F] float32 (bars up to the decision bar), regime [B, R], symbol [B] long; ``patterns``
        are the retrieved neighbours (``regime_rag``; None: regime-only, as when retrieval failed open).
        """
        if x.ndim != 3 or x.shape[-1] != self.n_features:
            raise DataError(
                f"model input must be [batch, seq_len, {self.n_features}] (model.net.n_features), "
                f"got {list(x.shape)}."
            )
        film, logits = None, None
        if self.conditioning is not None:
            cond = self.conditioning.encode(regime, symbol, patterns)
            film, logits = self.conditioning.film(cond.context), cond.regime_logits
        carry, z_H, stats = self.hrm(x, film, carry)
        signal, forecast, q = self.heads(z_H[:, -1])
        return NetOutput(signal=signal, forecast=forecast, q=q, carry=carry, stats=stats, regime_logits=logits)

    def components(self) -> dict[str, nn.Module]:
        """The budgeted parts; every parameter belongs to exactly one."""
        return {
            "h_module": self.hrm.h_module,
            "l_module": self.hrm.l_module,
            "heads": self.heads,
            "conditioning": self.conditioning if self.conditioning is not None else nn.Module(),
        }
