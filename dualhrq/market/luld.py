"""Limit Up-Limit Down: reference prices, price bands, limit states, trading pauses and reopenings.

The Plan to Address Extraordinary Market Volatility (the LULD plan), with the
parameters of the table in force on the day (``rules.LULD_TABLES``):

- Reference price: the day's opening price, then the arithmetic mean of the
  trades of the preceding 5 minutes, adopted only when it differs from the
  current reference by 1% or more. Bars carry no tick prints, so a bar
  contributes its ``trades`` count at the mean of its OHLC prices.
- Bands: reference price -/+ the percentage parameter of Appendix A, rounded
  to the cent, in exact integer units (``ticks``). The row (tier and price
  level) is chosen by the previous close; the width follows the live
  reference. In the doubling windows the parameter doubles. Where Amendment
  18 keeps the closing doubling for "Tier 2 stocks with a reference price at
  or below $3.00", the price compared is the previous close. Outside the
  hours the table's phase covers, or for a tier it does not cover yet, there
  is no band (NaN).
- Inside a bar: its high and low are tested against the band in force before
  the bar, before its trades enter the reference price. A bar that trades at
  a band enters a limit state at the bar's start; a bar that trades through
  one could only have done so after a pause, so a pause starts 15 seconds
  into the bar.
- Limit state at the quote: the best offer at (or below) the lower band, or
  the best bid at (or above) the upper band. A quote stands until the next
  one, so a limit state standing more than 15 seconds pauses trading for 5
  minutes from 15 seconds after it began.
- Reopening: at the first step at or after the pause's end; the reopening
  price (the step's mean trade price, else the mid quote) becomes the new
  reference price.

State is reset every day. ``LULDMachine`` steps all symbols together as
numpy arrays and takes the quotes of each step from its caller, so the
replay can show it quotes moved by its own transient impact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import polars as pl

from dualhrq.market.grid import MarketGrid
from dualhrq.market.rules import LULDTable, luld_in_force
from dualhrq.market.ticks import CENT, round_half_up, to_dollars, to_units

LIMIT_DOWN, LIMIT_UP = -1, 1
US = 1_000_000


@dataclass(frozen=True)
class LULDState:
    """(T, N) arrays of the band state at each step's quote time (prices in dollars, NaN without a band)."""

    reference: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    limit: np.ndarray  # int8: -1 limit-down, +1 limit-up (inside the bar or at its quote), 0 none
    paused: np.ndarray  # bool: a trading pause is in effect

    def counts(self) -> dict[str, int]:
        """Limit states (steps that entered one) and pauses (pauses begun) of the replay."""
        limit = self.limit != 0
        entered = limit & ~np.vstack([np.zeros((1, limit.shape[1]), bool), limit[:-1]])
        begun = self.paused & ~np.vstack([np.zeros((1, limit.shape[1]), bool), self.paused[:-1]])
        return {"limit_states": int(entered.sum()), "pauses": int(begun.sum())}


def band_parameter(row_units: np.ndarray, tier: np.ndarray, table: LULDTable) -> tuple[np.ndarray, np.ndarray]:
    """Appendix A's row for each symbol: (percentage, absolute cap in units), the cap inf except below $0.75."""
    pct = np.where(tier == 1, table.tier1_pct, table.tier2_pct)
    pct = np.where(row_units <= table.mid_cap, table.mid_pct, pct)
    low = row_units < table.mid_floor
    return np.where(low, table.low_pct, pct).astype(np.float64), np.where(low, float(table.low_abs), np.inf)


def bands(ref_units: np.ndarray, pct: np.ndarray, cap: np.ndarray, double: np.ndarray) -> tuple[np.ndarray, ...]:
    """(lower, upper) in units: reference -/+ min(pct% of reference, cap), doubled where ``double``, to the cent."""
    width = np.minimum(ref_units * pct, cap * 100) * np.where(double, 2.0, 1.0)  # in units / 100
    lower = round_half_up(ref_units * 100 - width, 100.0 * CENT) * CENT
    upper = round_half_up(ref_units * 100 + width, 100.0 * CENT) * CENT
    return lower, upper


def doubled(now_us: int, open_us: int, close_us: int, row_units: np.ndarray, tier: np.ndarray,
            table: LULDTable) -> np.ndarray:
    """Whether the band parameter doubles at ``now_us`` for each symbol."""
    opening = table.double_opening and open_us <= now_us < open_us + table.opening_window.total_seconds() * US
    closing = table.double_closing and close_us - table.closing_window.total_seconds() * US <= now_us <= close_us
    eligible = ((tier == 1) | (row_units <= table.mid_cap)) if table.closing_double_tier2_low_only else True
    return np.asarray(opening | (closing & eligible), dtype=bool) & np.ones(tier.shape, dtype=bool)


def in_hours(now_us: int, open_us: int, close_us: int, table: LULDTable) -> bool:
    """Whether ``now_us`` lies in the hours the table's phase of the plan covers."""
    return (open_us + table.bands_from.total_seconds() * US <= now_us
            <= close_us - table.bands_until.total_seconds() * US)


def trade_mean(grid: MarketGrid, lo: int, hi: int, window_us: int) -> tuple[np.ndarray, np.ndarray]:
    """For steps lo..hi-1, in units: (mean trade price over the preceding window, the step's own mean trade price).

    A bar's trade price is the mean of its OHLC prices in units; the sums are
    of integers, so the means are exact (rounded half up to the unit).
    """
    g = grid.arrays
    four = sum(to_units(g[k][lo:hi]) for k in ("open", "high", "low", "close"))  # 4 x the bar's price
    weight = np.where(np.isfinite(four), g["trades"][lo:hi], 0.0)
    wp = np.where(weight > 0, weight * np.nan_to_num(four), 0.0)
    cw = np.vstack([np.zeros((1, weight.shape[1])), np.cumsum(weight, axis=0)])
    cwp = np.vstack([np.zeros((1, weight.shape[1])), np.cumsum(wp, axis=0)])
    times = grid.time_us[lo:hi]
    start = np.searchsorted(times, times - window_us, side="right")
    k = np.arange(hi - lo)
    w = cw[k + 1] - cw[start]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(w > 0, round_half_up(cwp[k + 1] - cwp[start], 4 * np.maximum(w, 1)), np.nan)
        own = np.where(weight > 0, round_half_up(np.nan_to_num(four), 4.0), np.nan)
    return mean, own


class LULDMachine:
    """The LULD state machine over one grid: call ``step(t, bid, ask)`` for t = 0, 1, ... with quotes in units."""

    def __init__(self, grid: MarketGrid) -> None:
        self.grid = grid
        shape = grid.shape
        self.high, self.low = to_units(grid.high), to_units(grid.low)
        self.bar_start = grid.bar_ts.astype("datetime64[us]").astype(np.int64)
        self.state = LULDState(reference=np.full(shape, np.nan), lower=np.full(shape, np.nan),
                               upper=np.full(shape, np.nan), limit=np.zeros(shape, dtype=np.int8),
                               paused=np.zeros(shape, dtype=bool))
        self._day = -1

    def _start_day(self, d: int) -> None:
        g, n = self.grid, len(self.grid.symbols)
        lo, hi = int(g.day_start[d]), int(g.day_start[d + 1])
        self.table = table = luld_in_force(g.days[d])
        self.open_us, self.close_us = int(g.session_open_us[d]), int(g.session_close_us[d])
        opening = g.open[lo:hi]
        first = np.where(np.isfinite(opening).any(axis=0), np.argmax(np.isfinite(opening), axis=0), 0)
        open_units = to_units(opening[first, np.arange(n)])
        prev = to_units(g.prev_close[d])
        self.row = np.where(np.isfinite(prev), prev, open_units)  # first day of the grid: no previous close
        self.pct, self.cap = band_parameter(self.row, g.tier, table)
        self.tier_on = np.isin(g.tier, table.tiers)
        self.mean, self.own = trade_mean(g, lo, hi, int(table.ref_window.total_seconds() * US))
        self.lo = lo
        self.limit_us = int(table.limit_state_limit.total_seconds() * US)
        self.pause_us = int(table.pause.total_seconds() * US)
        self.ref = np.where(np.isfinite(open_units), open_units, prev)
        self.limit_since = np.full(n, -1, dtype=np.int64)  # -1: no limit state
        self.pause_until = np.zeros(n, dtype=np.int64)
        self.in_pause = np.zeros(n, dtype=bool)
        self._day = d

    def _band(self, at_us: int) -> tuple[np.ndarray, np.ndarray]:
        g, table = self.grid, self.table
        lower, upper = bands(self.ref, self.pct, self.cap,
                             doubled(at_us, self.open_us, self.close_us, self.row, g.tier, table))
        on = self.tier_on & in_hours(at_us, self.open_us, self.close_us, table)
        return np.where(on, lower, np.nan), np.where(on, upper, np.nan)

    def _pause(self, start: np.ndarray, since: np.ndarray) -> None:
        """Start a pause where ``start``: 15 seconds after ``since``, for 5 minutes."""
        self.pause_until = np.where(start, since + self.limit_us + self.pause_us, self.pause_until)
        self.in_pause |= start
        self.limit_since[start] = -1

    def step(self, t: int, bid: np.ndarray, ask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Advance to step ``t`` with its quotes (units); return (lower, upper, paused) in units at the quote."""
        g = self.grid
        d = int(g.day[t])
        if d != self._day:
            self._start_day(d)
        k, now, start = t - self.lo, int(g.time_us[t]), int(self.bar_start[t])
        self._pause((self.limit_since >= 0) & (now - self.limit_since > self.limit_us), self.limit_since)
        reopen = self.in_pause & (now >= self.pause_until)
        reopen_price = np.where(np.isfinite(self.own[k]), self.own[k], round_half_up(bid + ask, 2.0))
        self.ref = np.where(reopen & np.isfinite(reopen_price), reopen_price, self.ref)
        self.in_pause &= ~reopen
        # the bar's trades against the band in force before it
        before_lo, before_up = self._band(start)
        live = ~self.in_pause & ~reopen & (g.trades[t] > 0)
        with np.errstate(invalid="ignore"):
            at_down = live & (self.low[t] <= before_lo)
            at_up = live & (self.high[t] >= before_up)
            through = (at_down & (self.low[t] < before_lo)) | (at_up & (self.high[t] > before_up))
        self.limit_since = np.where((at_down | at_up) & (self.limit_since < 0), start, self.limit_since)
        self._pause(through, np.full_like(self.limit_since, start))
        # the reference price, with the bar's trades
        cand = self.mean[k]
        with np.errstate(invalid="ignore"):
            move = (~self.in_pause & ~reopen & np.isfinite(cand)
                    & (np.isnan(self.ref) | (np.abs(cand - self.ref) * 100 >= self.table.ref_move_pct * self.ref)))
        self.ref = np.where(move, cand, self.ref)
        lower, upper = self._band(now)
        with np.errstate(invalid="ignore"):
            down = ~self.in_pause & (ask <= lower)
            up = ~self.in_pause & (bid >= upper)
        quoted = down | up
        self.limit_since = np.where(quoted, np.where(self.limit_since < 0, now, self.limit_since), -1)
        self._pause(quoted & (now - self.limit_since > self.limit_us), self.limit_since)
        s = self.state
        s.reference[t] = to_dollars(self.ref)
        s.lower[t], s.upper[t] = to_dollars(lower), to_dollars(upper)
        s.limit[t] = np.where(down | at_down, LIMIT_DOWN, np.where(up | at_up, LIMIT_UP, 0))
        s.paused[t] = self.in_pause
        return lower, upper, self.in_pause.copy()


def luld_state(grid: MarketGrid) -> LULDState:
    """Replay every day's LULD state machine over the grid's own quotes."""
    machine = LULDMachine(grid)
    bid, ask = to_units(grid.bid), to_units(grid.ask)
    for t in range(grid.shape[0]):
        machine.step(t, bid[t], ask[t])
    return machine.state


def trips(state: LULDState, grid: MarketGrid, events: pl.DataFrame,
          within: timedelta = timedelta(minutes=5)) -> pl.DataFrame:
    """For each event (``symbol``, ``ts``): whether a limit state or a pause began within ``within`` of it."""
    index = {s: i for i, s in enumerate(grid.symbols)}
    rows = []
    for symbol, ts in events.select("symbol", "ts").iter_rows():
        if symbol not in index:
            continue
        at = np.datetime64(ts, "us")
        steps = (grid.bar_ts >= at) & (grid.bar_ts <= at + np.timedelta64(within))
        i = index[symbol]
        rows.append((symbol, ts, bool((state.limit[steps, i] != 0).any()), bool(state.paused[steps, i].any())))
    return pl.DataFrame(rows, schema={"symbol": pl.String, "ts": pl.Datetime("us"), "limit_state": pl.Boolean,
                                      "paused": pl.Boolean}, orient="row")
