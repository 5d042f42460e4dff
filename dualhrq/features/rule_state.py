"""Market-rule state as regime features: SEC Rule 201 (short sale price test) and the LULD plan's bands.

The state comes from the market rule engine (``dualhrq.market.ssr`` and
``dualhrq.market.luld``) replayed over the bars laid out as a
``MarketGrid``; nothing here restates the rules. Per (symbol, ts):

- ``ssr_active``: 1.0 while Rule 201 is in force at the bar's close, else 0.0.
- ``luld_dist_lower`` = (close - lower band) / close and
  ``luld_dist_upper`` = (upper band - close) / close, with the bands in force
  at the bar's close. Where no band exists (no reference price) both are 0.

Both engines step forward in time (Rule 201 tests each bar's low against the
previous session's last close; the LULD reference price is the day's open,
then the trailing 5-minute mean), so a value at t uses bars up to t only. One
input is calendar knowledge rather than a price: a day counts as an early
close (13:00, moving the closing band-doubling window) when its last bar
starts before 13:00, which the grid reads from the whole day's timestamps.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from dualhrq.market.grid import build_grid
from dualhrq.market.luld import luld_state
from dualhrq.market.ssr import ssr_restricted

RULE_STATE_FEATURES = ("ssr_active", "luld_dist_lower", "luld_dist_upper")


def rule_state_features(bars: pl.DataFrame) -> pl.DataFrame:
    """``symbol, ts`` and the ``RULE_STATE_FEATURES`` of every bar (bars need the quote contract's columns)."""
    grid = build_grid(bars, source="rule_state features")
    ssr = ssr_restricted(grid)
    state = luld_state(grid)
    close = grid.close
    with np.errstate(invalid="ignore", divide="ignore"):
        dist_lower = np.nan_to_num((close - state.lower) / close, nan=0.0, posinf=0.0, neginf=0.0)
        dist_upper = np.nan_to_num((state.upper - close) / close, nan=0.0, posinf=0.0, neginf=0.0)
    n_steps, n_symbols = grid.shape
    state_frame = pl.DataFrame({
        "symbol": np.tile(np.asarray(grid.symbols, dtype=object), n_steps).astype(str),
        "ts": np.repeat(grid.bar_ts, n_symbols),
        "ssr_active": ssr.astype(np.float64).ravel(),
        "luld_dist_lower": dist_lower.ravel(),
        "luld_dist_upper": dist_upper.ravel(),
    }).with_columns(pl.col("ts").cast(pl.Datetime("us")))
    keys = bars.select(pl.col("symbol").cast(pl.String), pl.col("ts").cast(pl.Datetime("us")))
    return keys.join(state_frame, on=["symbol", "ts"], how="left", maintain_order="left")
