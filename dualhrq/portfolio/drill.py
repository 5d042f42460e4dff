"""The kill-switch drill: would the configured kill switch stop a crash, and how many bars does flattening take?

A planted market, not the data: one symbol closes at $100 on a quiet day,
where a long book of ``weight`` times capital is bought, then falls 0.1% a
minute through the next session (-32% by the close, with LULD bands and Rule
201 in force as always). The book is replayed by the strict engine with the
replay's own costs and participation cap under a fresh guard of the switch.
The drill passes when the switch trips and the book is flat while halted;
``bars_to_flat`` counts the bars from the breach to the first flat close.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from dualhrq.market.costs import CostModel
from dualhrq.market.engine import Execution, replay
from dualhrq.market.grid import build_grid
from dualhrq.risk.killswitch import KillSwitch

VOLUME = 1_000_000.0  # shares a bar: deep enough that the cap is not what the drill measures


def _session(day: str, closes: np.ndarray, start: str = "09:30") -> pl.DataFrame:
    """One-minute bars of symbol ``DRILL`` along ``closes``, quoted a cent either side."""
    t0 = datetime.fromisoformat(f"{day}T{start}")
    opens = np.r_[closes[0], closes[:-1]]
    n = closes.size
    return pl.DataFrame({
        "ts": pl.Series([t0 + timedelta(minutes=i) for i in range(n)], dtype=pl.Datetime("us")), "symbol": "DRILL",
        "open": opens, "high": np.maximum(opens, closes), "low": np.minimum(opens, closes), "close": closes,
        "volume": np.full(n, VOLUME), "trades": np.full(n, 100, dtype=np.int64), "bid": closes - 0.01,
        "ask": closes + 0.01, "bid_size": np.full(n, 100.0), "ask_size": np.full(n, 100.0),
        "luld_tier": np.full(n, 1, dtype=np.int8)})


def crash_drill(switch: KillSwitch, weight: float = 0.5, costs: CostModel | None = None,
                execution: Execution | None = None, capital: float = 1_000_000.0) -> dict[str, float]:
    """``drill_tripped`` (1/0), ``drill_bars_to_flat`` (NaN if never flat) and ``drill_loss`` (over capital);
    ``capital`` is the book's where the switch does not name its own."""
    if switch.capital is None:
        switch = replace(switch, capital=capital)
    crash = np.round(100.0 * 0.999 ** np.arange(390), 2)
    bars = pl.concat([_session("2024-03-04", np.array([100.0]), start="15:59"),
                      _session("2024-03-05", np.full(10, 100.0), start="15:50"),
                      _session("2024-03-06", crash)])
    grid = build_grid(bars, source="kill-switch drill")
    target = np.full((grid.shape[0], 1), np.floor(weight * switch.capital / 100.0))
    target[0] = 0.0
    guard = switch.guard(grid.day)
    rec = replay(grid, target, costs if costs is not None else CostModel(), execution, guard=guard)
    if not guard.trips:
        return {"drill_tripped": 0.0, "drill_bars_to_flat": float("nan"),
                "drill_loss": float(-rec.equity[-1].sum() / switch.capital)}
    trip = guard.trips[0]
    to_flat = float(trip.flat_bar - trip.bar) if trip.flat_bar is not None else float("nan")
    return {"drill_tripped": 1.0, "drill_bars_to_flat": to_flat,
            "drill_loss": float(-rec.equity[-1].sum() / switch.capital)}
