"""The training objective: the backtest's per-date portfolio return, made differentiable.

A training batch is a run of contiguous dates (``dualhrq.training.date_batches``),
so its positions can be replayed exactly as the close-to-close backtest
(``dualhrq.market.backtest``) replays a path: each symbol's position over
(t, t+1] earns that bar's simple return, changing it costs ``cost_bps`` of the
traded notional (the first date of the batch enters from flat, as the
backtest's first bar does), and a date's portfolio return is the mean over the
symbols decided on that date.

The utility is mean-variance, ``mean(r) - risk_aversion / 2 * var(r)`` of the
per-date net returns ``r`` measured in the fold's target standard deviations.
Unlike a Sharpe ratio it is not scale-invariant, so it fixes the position size:
for a constant position the optimum is the per-date Sharpe ratio of the asset
divided by ``risk_aversion``. With ``benchmark=buy_and_hold`` ``r`` is the
active return, the portfolio's net return less that of always-long on the same
dates and symbols, the primary baseline the gates judge against; a position
then earns credit only for what it adds to holding.

Under dense supervision (``model.supervision.dense``) a window decides at each
of its supervised bars, so a batch's decisions are the (symbol, bar) pairs of
all its windows' supervised bars (:func:`supervised_bars`). The training
batches (``dualhrq.training.date_batches.DenseBlockSampler``) take only the
windows whose supervised bars tile their symbol's bars, so every pair occurs
once and each symbol's decisions are its consecutive bars: the replay above
then prices them exactly as the backtest prices positions held on those dates,
with costs on changes from one bar to the next across window boundaries too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import torch
from torch import Tensor

from dualhrq.config import NonNegative, Positive, check_fields, one_of, parse

BUY_AND_HOLD = "buy_and_hold"
BENCHMARKS = (BUY_AND_HOLD,)


@dataclass(frozen=True)
class TradingObjective:
    """``model.loss``: weights of the forecast likelihood and the portfolio utility, the backtest's cost, the
    utility's risk aversion (per unit variance of target-std returns), the benchmark (null: absolute returns)
    and the regime classifier's auxiliary weight."""

    forecast_weight: NonNegative = 1.0
    utility_weight: NonNegative = 0.5
    cost_bps: NonNegative = 1.0
    risk_aversion: Positive = 0.05
    benchmark: Annotated[str, one_of(BENCHMARKS)] | None = None
    regime_weight: NonNegative = 0.0

    def __post_init__(self) -> None:
        check_fields(self)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None, where: str = "loss") -> TradingObjective:
        return parse(cls, cfg, where)


@dataclass(frozen=True)
class PortfolioReturns:
    """Per-date figures of a batch's positions, dates ascending; ``trade`` per sample in (symbol, date) order."""

    gross: Tensor
    cost: Tensor
    trade: Tensor

    @property
    def net(self) -> Tensor:
        return self.gross - self.cost


def portfolio_returns(position: Tensor, next_return: Tensor, symbol: Tensor, date: Tensor,
                      cost_bps: float) -> PortfolioReturns:
    """The backtest's replay of ``position`` [B] in [-1, 1]: per-date equal-weighted gross return and cost.

    ``symbol`` and ``date`` [B] are integer keys (one sample per pair); a symbol's position change is taken
    from its previous date in the batch, from flat before its first."""
    by_date = torch.argsort(date, stable=True)
    order = by_date[torch.argsort(symbol[by_date], stable=True)]
    held, sym = position[order], symbol[order]
    same = torch.cat([sym.new_zeros(1, dtype=torch.bool), sym[1:] == sym[:-1]])
    previous = torch.where(same, torch.cat([held.new_zeros(1), held[:-1]]), torch.zeros_like(held))
    trade = (held - previous).abs()
    _, slot = torch.unique(date[order], return_inverse=True)
    count = torch.bincount(slot).to(held.dtype)

    def per_date(values: Tensor) -> Tensor:
        return torch.zeros_like(count).index_add(0, slot, values) / count

    return PortfolioReturns(gross=per_date(held * next_return[order].to(held.dtype)),
                            cost=per_date(trade * cost_bps * 1e-4), trade=trade)


def mean_variance(returns: Tensor, risk_aversion: float) -> Tensor:
    """``mean - risk_aversion / 2 * variance`` (population variance) of a return series."""
    return returns.mean() - 0.5 * risk_aversion * returns.var(unbiased=False)


def trading_loss(signal: Tensor, forecast: Tensor, batch: Mapping[str, Tensor], objective: TradingObjective,
                 target_scale: float) -> dict[str, Tensor]:
    """Forecast NLL and negative mean-variance utility of the batch's per-date (active) net return.

    ``batch`` holds ``target_z`` (the standardised label), ``next_return``, ``symbol`` and ``date``;
    ``target_scale`` converts returns to target standard deviations. Also reported: the per-date Sharpe ratio
    of the net return (not annualised), the mean position and the mean active position (position less the
    benchmark's)."""
    target_z = batch["target_z"]
    mean, logvar = forecast[:, 0], forecast[:, 1].clamp(-10.0, 10.0)
    nll = 0.5 * (logvar + (target_z - mean) ** 2 * torch.exp(-logvar)).mean()
    replay = portfolio_returns(signal, batch["next_return"], batch["symbol"], batch["date"], objective.cost_bps)
    net, active_position = replay.net, signal
    if objective.benchmark == BUY_AND_HOLD:
        held = portfolio_returns(torch.ones_like(signal), batch["next_return"], batch["symbol"], batch["date"],
                                 objective.cost_bps)
        net, active_position = net - held.net, signal - 1.0
    utility = mean_variance(net / target_scale, objective.risk_aversion)
    loss = objective.forecast_weight * nll - objective.utility_weight * utility
    own = replay.net
    sharpe = own.mean() / own.std() if len(own) > 1 else own.new_tensor(float("nan"))
    return {"loss": loss, "nll": nll, "utility": utility, "sharpe": sharpe.detach(),
            "position": signal.detach().mean(), "active_position": active_position.detach().mean(),
            "turnover": replay.trade.detach().mean()}


def supervised_bars(signal: Tensor, forecast: Tensor,
                    batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """A dense batch's supervised bars as decisions of their own: (position [N], forecast [N, 2], batch items).

    ``signal`` [B, T] and ``forecast`` [B, T, 2] are every bar's outputs; ``batch`` holds ``supervised`` [B, T]
    (bool), each bar's ``target_z_seq``, ``next_return_seq`` and ``date_seq`` [B, T], and the window's
    ``symbol`` [B]."""
    mask = batch["supervised"]
    bars = {"target_z": batch["target_z_seq"][mask], "next_return": batch["next_return_seq"][mask],
            "symbol": batch["symbol"][:, None].expand_as(mask)[mask], "date": batch["date_seq"][mask]}
    return signal[mask], forecast[mask], bars
