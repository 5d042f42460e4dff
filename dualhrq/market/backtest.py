"""Close-to-close replay of model signals: the simple market of the daily data.

A signal decided at bar t's close is held as the position over (t, t+1] and
earns that bar's simple return. Changing a position costs ``cost_bps`` of the
traded notional. Symbols are equally weighted within each date, so the
portfolio return of a date is the mean over the symbols that have a signal.
The rule-exact intraday simulator (SSR, LULD, impact) replaces this for
intraday data; this one has no rules to enforce on daily index data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from dualhrq.primitives.returns import max_drawdown, sharpe_ratio

REQUIRED = ("ts", "symbol", "signal", "next_return")


@dataclass(frozen=True)
class BacktestResult:
    """Per-date portfolio returns and their headline figures."""

    returns: pl.DataFrame  # ts, gross, cost, net
    sharpe: float
    max_drawdown: float
    turnover: float  # mean absolute position change per symbol and bar

    @property
    def net(self) -> np.ndarray:
        return self.returns["net"].to_numpy()

    def details(self) -> dict[str, float]:
        """Further figures of the replay for the run's metrics; the close-to-close replay has none."""
        return {}


@dataclass(frozen=True)
class SignalBacktest:
    """Replays positions in [-1, 1] at close-to-close returns with proportional costs."""

    cost_bps: float = 1.0
    periods_per_year: int = 252

    def run(self, predictions: pl.DataFrame) -> BacktestResult:
        missing = [c for c in REQUIRED if c not in predictions.columns]
        if missing:
            raise ValueError(f"backtest input lacks columns {missing}; it needs {list(REQUIRED)}")
        per_symbol = (
            predictions.sort("symbol", "ts")
            .with_columns(position=pl.col("signal").clip(-1.0, 1.0))
            .with_columns(trade=(pl.col("position") - pl.col("position").shift(1).fill_null(0.0)).abs()
                          .over("symbol"))
            .with_columns(gross=pl.col("position") * pl.col("next_return"),
                          cost=pl.col("trade") * self.cost_bps * 1e-4)
        )
        returns = (
            per_symbol.group_by("ts").agg(pl.col("gross").mean(), pl.col("cost").mean())
            .sort("ts").with_columns(net=pl.col("gross") - pl.col("cost"))
        )
        net = returns["net"].to_numpy()
        return BacktestResult(returns=returns, sharpe=sharpe_ratio(net, self.periods_per_year),
                              max_drawdown=max_drawdown(net), turnover=float(per_symbol["trade"].mean()))
