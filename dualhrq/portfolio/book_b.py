"""Book B, the intraday equity book: model signals -> sized target positions for the strict replay.

A prediction row (``ts``, ``symbol``, ``signal``, optional ``t1``) is a
decision at the close of bar ``ts``. The configured transform
(``transforms``) turns signals into raw targets in [-1, 1]; each is sized by
volatility targeting, ``weight = target * vol_target / (sigma * sqrt(bars
per year)) / n_symbols`` capped at ``max_weight`` (Moreira and Muir 2017),
with ``sigma`` the symbol's recent per-bar volatility, and turned into whole
shares at the decision bar's mid. The position is held until the symbol's
next decision on the same trading day replaces it; the day's last decision
is held until ``t1`` (the label's end), so a book trading on a stride
longer than the label horizon does not close and reopen between decisions
but is flat across gaps (overnight, between test blocks). Without ``t1`` a
decision holds until the next one. With ``slices > 1`` every change of target
is worked over that many bars along the Almgren-Chriss trajectory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import polars as pl
from scipy.signal import lfilter

from dualhrq.config import NonNegative, Positive, PositiveInt, check_fields, check_value, invalid, one_of
from dualhrq.errors import DataError
from dualhrq.market.almgren_chriss import schedule_weights
from dualhrq.market.costs import bar_volatility
from dualhrq.market.grid import MarketGrid
from dualhrq.portfolio.transforms import TRANSFORMS, transform_expr


@dataclass(frozen=True)
class EquityBook:
    """Signal transform, volatility-target sizing and the execution schedule (``backtest.book``)."""

    transform: Annotated[str, one_of(TRANSFORMS)] = "raw"
    fast: int = 5
    slow: int = 20
    window: int = 20
    vol_target: Positive = 0.10
    max_weight: Positive = 0.25
    vol_window: PositiveInt = 60
    bars_per_year: PositiveInt = 252 * 390
    slices: PositiveInt = 1
    risk_aversion: float = 0.0
    temporary_impact: float = 1e-4
    permanent_impact: float = 0.0
    schedule_sigma: float = 1e-3

    def __post_init__(self) -> None:
        check_fields(self)
        transform_expr(self.transform, self.fast, self.slow, self.window)
        if self.slices > 1:  # the Almgren-Chriss schedule's ranges, in this book's names (one bar per interval)
            check_value("schedule_sigma", self.schedule_sigma, Positive)
            check_value("temporary_impact", self.temporary_impact, Positive)
            check_value("permanent_impact", self.permanent_impact, NonNegative)
            check_value("risk_aversion", self.risk_aversion, NonNegative)
            if self.temporary_impact <= self.permanent_impact / 2:
                raise invalid("temporary_impact", self.temporary_impact,
                              f"above half of permanent_impact ({self.permanent_impact})")
            self.schedule()

    def schedule(self) -> np.ndarray:
        """Share of a target change traded in each of the next ``slices`` bars."""
        if self.slices == 1:
            return np.ones(1)
        return schedule_weights(self.slices, self.risk_aversion, self.schedule_sigma, self.temporary_impact,
                                self.permanent_impact)

    def targets(self, predictions: pl.DataFrame, grid: MarketGrid, capital: float) -> np.ndarray:
        """(T, N) target shares over the grid (0 where no decision is in force)."""
        frame = predictions.sort("symbol", "ts").with_columns(
            transform_expr(self.transform, self.fast, self.slow, self.window))
        T, N = grid.shape
        t_idx = np.searchsorted(grid.bar_ts, frame["ts"].to_numpy())
        t_idx_c = np.minimum(t_idx, T - 1)
        off_grid = grid.bar_ts[t_idx_c] != frame["ts"].to_numpy()
        if off_grid.any():
            first = frame["ts"][int(np.argmax(off_grid))]
            raise DataError(f"predictions: decision time {first} is not a bar of the replayed market. "
                            "Fix: replay signals made on the market's own bars.")
        s_idx = np.searchsorted(np.asarray(grid.symbols, dtype=object), frame["symbol"].to_numpy())
        mid = grid.mid[t_idx, s_idx]
        sigma = bar_volatility(grid.close, self.vol_window)[t_idx, s_idx] * math.sqrt(self.bars_per_year)
        n_symbols = frame["symbol"].n_unique()
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(sigma > 0, self.vol_target / sigma, 0.0) / n_symbols
            weight = np.clip(frame["target"].to_numpy() * scale, -self.max_weight, self.max_weight)
            shares = np.where(mid > 0, np.round(weight * capital / mid), 0.0)
        held = np.full((T, N), np.nan)
        held[t_idx, s_idx] = shares
        end = np.full((T, N), np.iinfo(np.int64).max)
        if "t1" in frame.columns:
            nxt = pl.col("ts").shift(-1).over("symbol")
            last_of_day = frame.select((nxt.is_null() | (nxt.dt.date() != pl.col("ts").dt.date())).alias("x"))["x"]
            t1_idx = np.searchsorted(grid.bar_ts, frame["t1"].to_numpy())
            end[t_idx, s_idx] = np.where(last_of_day.to_numpy(), t1_idx, np.iinfo(np.int64).max)
        decided = np.isfinite(held)
        last = np.maximum.accumulate(np.where(decided, np.arange(T)[:, None], -1), axis=0)
        cols = np.arange(N)
        rows = np.maximum(last, 0)
        target = np.where(last >= 0, held[rows, cols], 0.0)
        expired = (last < 0) | (np.arange(T)[:, None] >= end[rows, cols])
        target = np.where(expired, 0.0, target)
        if self.slices > 1:
            target = np.round(lfilter(self.schedule(), [1.0], target, axis=0))
        return target
