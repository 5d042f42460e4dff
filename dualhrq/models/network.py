"""DualHRQNet: conditioning -> FiLM on the L-module -> HRM -> trading heads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from torch import Tensor, nn

from dualhrq.config import check_value, invalid, one_of, positive_int
from dualhrq.errors import DataError
from dualhrq.models.conditioning import ConditionerFactory, PatternBatch
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
    dense_signal: Tensor | None = None  # [B, T] position at every bar of the window (dense supervision)
    dense_forecast: Tensor | None = None  # [B, T, 2] forecast at every bar


def check_norm(norm: str, field: str = "net.norm") -> str:
    """``norm`` if it names a block layout; ``field`` is where it was read, relative to the model."""
    return check_value(field, norm, Annotated[str, one_of(NORMS)])


class ConditionedNet(nn.Module):
    """What every DualHRQ network shares: input check, the conditioner built with the network's own sizes,
    FiLM from its context, the trading heads and the budgeted components.

    Subclasses build their backbone first, then call :meth:`_finish` (the order fixes the initial weights).
    """

    recurrent = False
    dense_capable = False  # outputs at every bar (model.supervision.dense) with per-bar FiLM

    def _finish(self, *, n_features: int, n_regime_features: int, n_symbols: int,
                conditioner: ConditionerFactory | None, cond_hidden: int, head_hidden: int, film_layers: int,
                film_dim: int, heads_dim: int, q_head: bool = False) -> None:
        self.n_features = n_features
        self.conditioning = None if conditioner is None else conditioner(
            n_regime_features=n_regime_features, n_symbols=n_symbols, hidden=cond_hidden, n_layers=film_layers,
            d_model=film_dim)
        self.heads = TradingHeads(heads_dim, head_hidden, q_head=q_head)

    def check_input(self, x: Tensor) -> None:
        if x.ndim != 3 or x.shape[-1] != self.n_features:
            raise DataError(f"model input must be [batch, seq_len, {self.n_features}] (the data config's "
                            f"features), got {list(x.shape)}.")

    def condition(self, regime: Tensor, symbol: Tensor,
                  patterns: PatternBatch | None) -> tuple[tuple[Tensor, Tensor] | None, Tensor | None]:
        """FiLM (gamma, beta) and regime logits; (None, None) without a conditioner. ``regime`` [B, R] is the
        decision bar's (one FiLM for the window) or [B, T, R] every bar's (one FiLM per bar); the logits are the
        decision bar's either way, for the auxiliary regime loss."""
        if self.conditioning is None:
            return None, None
        cond = self.conditioning.encode(regime, symbol, patterns)
        logits = cond.regime_logits
        if logits is not None and logits.ndim == 3:
            logits = logits[:, -1]
        return self.conditioning.film(cond.context), logits

    def backbone(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def components(self) -> dict[str, nn.Module]:
        """The budgeted parts; every parameter belongs to exactly one."""
        return {**self.backbone(), "heads": self.heads,
                "conditioning": self.conditioning if self.conditioning is not None else nn.Module()}


def check_sizes(rope_base: float, **sizes: int) -> None:
    for name, value in sizes.items():
        positive_int(value, f"net.{name}")
    if not rope_base > 0:
        raise invalid("net.rope_base", rope_base, "positive")


class DualHRQNet(ConditionedNet):
    """The whole network. The decision at bar t reads the H state at the window's last bar.

    ``h`` and ``l`` are ``{dim, layers, heads, ffn_hidden}`` mappings (config
    ``model.net.h`` / ``model.net.l``); ``conditioner`` is ``model.conditioning.module``.
    """

    recurrent = True  # carries state across deep-supervision segments
    dense_capable = True

    def __init__(
        self,
        *,
        n_features: int,
        n_regime_features: int,
        n_symbols: int,
        h: Mapping[str, int],
        l: Mapping[str, int],  # noqa: E741 - the paper's name for the low level
        conditioner: ConditionerFactory | None = None,
        h_cycles: int = 2,
        l_cycles: int = 2,
        cond_hidden: int = 64,
        head_hidden: int = 128,
        rope_base: float = 10000.0,
        norm: str = "post",
        recursion: Mapping[str, Any] | None = None,
        q_head: bool = False,
        dense: bool = False,
    ) -> None:
        super().__init__()
        self.dense = dense
        h_size = LevelSize.from_config(h, "net.h")
        l_size = LevelSize.from_config(l, "net.l")
        check_sizes(rope_base, n_features=n_features, h_cycles=h_cycles, l_cycles=l_cycles, cond_hidden=cond_hidden,
                    head_hidden=head_hidden)
        self.hrm = HRM(n_features=n_features, h=h_size, l=l_size, h_cycles=h_cycles, l_cycles=l_cycles,
                       rope_base=rope_base, norm=check_norm(norm),
                       recursion=RecursionConfig.from_config(recursion))
        self._finish(n_features=n_features, n_regime_features=n_regime_features, n_symbols=n_symbols,
                     conditioner=conditioner, cond_hidden=cond_hidden, head_hidden=head_hidden,
                     film_layers=l_size.layers, film_dim=l_size.dim, heads_dim=h_size.dim, q_head=q_head)

    def initial_carry(self, batch: int, seq_len: int) -> HRMCarry:
        """The starting state of ``batch`` fresh samples (a deep-supervision slot that takes new samples)."""
        return self.hrm.initial_carry(batch, seq_len)

    def forward(self, x: Tensor, regime: Tensor, symbol: Tensor, carry: HRMCarry | None = None,
                patterns: PatternBatch | None = None) -> NetOutput:
        """One segment from ``carry`` (the initial state if None).

        x [B, T, F] float32 (bars up to the decision bar), regime [B, R] (or [B, T, R], each bar's, for
        per-bar FiLM), symbol [B] long; ``patterns`` are the retrieved neighbours (``regime_rag``; None:
        regime-only, as when retrieval failed open). Built ``dense``, the heads read every bar too: attention is
        causal and FiLM per bar, so bar p's outputs depend on bars <= p only; the decision (and Q) is the last
        bar's.
        """
        self.check_input(x)
        film, logits = self.condition(regime, symbol, patterns)
        carry, z_H, stats = self.hrm(x, film, carry)
        if not self.dense:
            signal, forecast, q = self.heads(z_H[:, -1])
            return NetOutput(signal=signal, forecast=forecast, q=q, carry=carry, stats=stats, regime_logits=logits)
        signals, forecasts, q = self.heads(z_H)
        return NetOutput(signal=signals[:, -1], forecast=forecasts[:, -1], q=None if q is None else q[:, -1],
                         carry=carry, stats=stats, regime_logits=logits, dense_signal=signals,
                         dense_forecast=forecasts)

    def backbone(self) -> dict[str, nn.Module]:
        return {"h_module": self.hrm.h_module, "l_module": self.hrm.l_module}
