"""SEC Rule 201, the short sale price test (17 CFR 242.201).

Once a security's price falls ``trigger_pct`` (10%) or more below its prior
day's closing price, the restriction holds for the rest of that day and the
whole following trading day; while it holds a short sale may execute only at
a price above the current national best bid. The trigger is tested on the
bar's low (its lowest trade): a bar whose low reaches the trigger price
starts the restriction, and orders decided at that bar's close already face
it. A trigger in the last bar of a day therefore restricts that bar and the
entire next day. Prices are compared in exact units (``ticks``), so a trade
at exactly 90% of the prior close triggers.
"""

from __future__ import annotations

import numpy as np

from dualhrq.market.grid import MarketGrid
from dualhrq.market.rules import ssr_in_force
from dualhrq.market.ticks import to_units


def triggered(low_units: np.ndarray, prev_close_units: np.ndarray, trigger_pct: int) -> np.ndarray:
    """low <= (1 - pct/100) * prior close, in integers: 100 * low <= (100 - pct) * prior close."""
    with np.errstate(invalid="ignore"):
        return 100 * low_units <= (100 - trigger_pct) * prev_close_units


def ssr_restricted(grid: MarketGrid) -> np.ndarray:
    """(T, N) bool: Rule 201 in force at each step's quote time."""
    restricted = np.zeros(grid.shape, dtype=bool)
    carried = np.zeros(len(grid.symbols), dtype=bool)  # triggered on the previous trading day
    low, prev = to_units(grid.low), to_units(grid.prev_close)
    for d in range(len(grid.days)):
        rule = ssr_in_force(grid.days[d])
        lo, hi = grid.day_start[d], grid.day_start[d + 1]
        today = np.logical_or.accumulate(triggered(low[lo:hi], prev[d], rule.trigger_pct), axis=0)
        restricted[lo:hi] = today | carried
        carried = today[-1] if hi > lo else np.zeros_like(carried)
    return restricted
