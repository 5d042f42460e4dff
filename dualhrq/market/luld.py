"""Limit Up-Limit Down: reference prices, price bands, limit states, trading pauses and reopenings.

The Plan to Address Extraordinary Market Volatility (the LULD plan):

- Reference price: the day's opening price, then the arithmetic mean of the
  trades of the preceding 5 minutes, adopted only when it differs from the
  current reference by 1% or more. Bars carry no tick prints, so a bar
  contributes its ``trades`` count at the mean of its OHLC prices.
- Bands: reference price -/+ the percentage parameter of Appendix A. The row
  (tier and price level) is chosen by the previous close; the band is
  computed from the live reference price and rounded to the cent. In the
  doubling windows of the table in force (``rules.LULD_TABLES``) the
  parameter doubles. Where Amendment 18 keeps the closing doubling for
  "Tier 2 stocks with a reference price at or below $3.00", the price
  compared is the previous close, the Appendix A reference price.
- Limit state: the national best offer at (or below) the lower band, or the
  best bid at (or above) the upper band. A quote stands until the next one,
  so a limit state still standing more than 15 seconds after it began starts
  a 5-minute trading pause 15 seconds after its start (with one quote per
  minute, every limit state does).
- Reopening: at the first step at or after the pause's end; the reopening
  price (the step's mean trade price, else the mid quote) becomes the new
  reference price.

State is reset every day. Steps of one day are iterated in time order with
all symbols updated together as numpy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dualhrq.market.grid import MarketGrid
from dualhrq.market.rules import LULDTable, luld_in_force

LIMIT_DOWN, LIMIT_UP = -1, 1


@dataclass(frozen=True)
class LULDState:
    """(T, N) arrays of the band state at each step's quote time."""

    reference: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    limit: np.ndarray  # int8: -1 limit-down state, +1 limit-up state, 0 none
    paused: np.ndarray  # bool: a trading pause is in effect


def band_parameter(prev_close: np.ndarray, tier: np.ndarray, table: LULDTable) -> tuple[np.ndarray, np.ndarray]:
    """Appendix A's row for each symbol: (percentage, absolute cap), the cap inf except below $0.75."""
    pct = np.where(tier == 1, table.tier1_pct, table.tier2_pct)
    pct = np.where(prev_close <= table.mid_cap, table.mid_pct, pct)
    low = prev_close < table.mid_floor
    return np.where(low, table.low_pct, pct), np.where(low, table.low_abs, np.inf)


def doubled(now_us: int, open_us: int, close_us: int, prev_close: np.ndarray, tier: np.ndarray,
            table: LULDTable) -> np.ndarray:
    """Whether the band parameter doubles at ``now_us`` for each symbol."""
    us = 1_000_000
    opening = table.double_opening and open_us <= now_us < open_us + table.opening_window.total_seconds() * us
    closing = close_us - table.closing_window.total_seconds() * us <= now_us <= close_us
    eligible = ((tier == 1) | (prev_close <= table.mid_cap)) if table.closing_double_tier2_low_only else True
    return np.asarray(opening | (closing & eligible), dtype=bool) & np.ones(tier.shape, dtype=bool)


def bands(reference: np.ndarray, pct: np.ndarray, cap: np.ndarray, double: np.ndarray) -> tuple[np.ndarray, ...]:
    """(lower, upper): reference -/+ min(pct * reference, cap), doubled where ``double``, to the cent."""
    width = np.minimum(pct * reference, cap) * np.where(double, 2.0, 1.0)
    return np.round((reference - width) * 100) / 100, np.round((reference + width) * 100) / 100


def trade_mean(grid: MarketGrid, lo: int, hi: int, window_us: int) -> tuple[np.ndarray, np.ndarray]:
    """For steps lo..hi-1: (mean trade price over the preceding window, the step's own mean trade price)."""
    g = grid.arrays
    price = (g["open"] + g["high"] + g["low"] + g["close"])[lo:hi] / 4.0
    weight = np.where(np.isfinite(price), g["trades"][lo:hi], 0.0)
    wp = np.where(weight > 0, weight * np.nan_to_num(price), 0.0)
    cw = np.vstack([np.zeros((1, weight.shape[1])), np.cumsum(weight, axis=0)])
    cwp = np.vstack([np.zeros((1, weight.shape[1])), np.cumsum(wp, axis=0)])
    times = grid.time_us[lo:hi]
    start = np.searchsorted(times, times - window_us, side="right")
    k = np.arange(hi - lo)
    w = cw[k + 1] - cw[start]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(w > 0, (cwp[k + 1] - cwp[start]) / w, np.nan)
        own = np.where(weight > 0, price, np.nan)
    return mean, own


def luld_state(grid: MarketGrid) -> LULDState:
    """Replay every day's LULD state machine over the grid."""
    shape = grid.shape
    out = LULDState(reference=np.full(shape, np.nan), lower=np.full(shape, np.nan), upper=np.full(shape, np.nan),
                    limit=np.zeros(shape, dtype=np.int8), paused=np.zeros(shape, dtype=bool))
    bid, ask, first_open = grid.bid, grid.ask, grid.open
    for d in range(len(grid.days)):
        lo, hi = int(grid.day_start[d]), int(grid.day_start[d + 1])
        table = luld_in_force(grid.days[d])
        open_us, close_us = grid.session_open_us[d], grid.session_close_us[d]
        prev = grid.prev_close[d]
        opening = first_open[lo:hi]
        first = np.where(np.isfinite(opening).any(axis=0), np.argmax(np.isfinite(opening), axis=0), 0)
        open_price = opening[first, np.arange(shape[1])]
        row_price = np.where(np.isfinite(prev), prev, open_price)  # first replayed day: no previous close
        pct, cap = band_parameter(row_price, grid.tier, table)
        mean, own = trade_mean(grid, lo, hi, int(table.ref_window.total_seconds() * 1e6))
        limit_us = int(table.limit_state_limit.total_seconds() * 1e6)
        pause_us = int(table.pause.total_seconds() * 1e6)
        ref = np.where(np.isfinite(open_price), open_price, prev)
        limit_since = np.full(shape[1], -1, dtype=np.int64)  # -1: no limit state
        pause_until = np.zeros(shape[1], dtype=np.int64)
        in_pause = np.zeros(shape[1], dtype=bool)
        mid = 0.5 * (bid[lo:hi] + ask[lo:hi])
        for k in range(hi - lo):
            t = lo + k
            now = int(grid.time_us[t])
            start = (limit_since >= 0) & (now - limit_since > limit_us)
            pause_until = np.where(start, limit_since + limit_us + pause_us, pause_until)
            in_pause |= start
            limit_since[start] = -1
            reopen = in_pause & (now >= pause_until)
            reopen_price = np.where(np.isfinite(own[k]), own[k], mid[k])
            ref = np.where(reopen & np.isfinite(reopen_price), reopen_price, ref)
            in_pause &= ~reopen
            cand = mean[k]
            with np.errstate(invalid="ignore"):
                move = ~in_pause & ~reopen & np.isfinite(cand) & (np.abs(cand / ref - 1.0) >= table.ref_move)
            ref = np.where(move, cand, ref)
            lower, upper = bands(ref, pct, cap, doubled(now, open_us, close_us, row_price, grid.tier, table))
            with np.errstate(invalid="ignore"):
                down = ~in_pause & (ask[t] <= lower)
                up = ~in_pause & (bid[t] >= upper)
            state = down | up
            limit_since = np.where(state & (limit_since < 0), now, np.where(state, limit_since, -1))
            out.reference[t], out.lower[t], out.upper[t] = ref, lower, upper
            out.limit[t] = np.where(down, LIMIT_DOWN, np.where(up, LIMIT_UP, 0))
            out.paused[t] = in_pause
    return out
