"""SEC Rule 201, the short sale price test (17 CFR 242.201).

Once a security's price falls ``trigger_drop`` (10%) or more below its prior
day's closing price, the restriction holds for the rest of that day and the
whole following trading day; while it holds a short sale may execute only at
a price above the current national best bid. The trigger is tested on the
bar's low (its lowest trade): a bar whose low crosses the trigger price
starts the restriction, and orders decided at that bar's close already face
it. A trigger in the last bar of a day therefore restricts that bar and the
entire next day.
"""

from __future__ import annotations

import numpy as np

from dualhrq.market.grid import MarketGrid
from dualhrq.market.rules import ssr_in_force


def ssr_restricted(grid: MarketGrid) -> np.ndarray:
    """(T, N) bool: Rule 201 in force at each step's quote time."""
    n_days = len(grid.days)
    restricted = np.zeros(grid.shape, dtype=bool)
    carried = np.zeros(len(grid.symbols), dtype=bool)  # triggered on the previous trading day
    for d in range(n_days):
        rule = ssr_in_force(grid.days[d])
        lo, hi = grid.day_start[d], grid.day_start[d + 1]
        with np.errstate(invalid="ignore"):
            hit = grid.low[lo:hi] <= (1.0 - rule.trigger_drop) * grid.prev_close[d]
        today = np.logical_or.accumulate(hit, axis=0)
        restricted[lo:hi] = today | carried
        carried = today[-1] if hi > lo else np.zeros_like(carried)
    return restricted


def short_sale_allowed(price: np.ndarray, bid: np.ndarray, restricted: np.ndarray) -> np.ndarray:
    """Rule 201's price test: under the restriction a short sale must print above the national best bid."""
    return ~restricted | (price > bid)
