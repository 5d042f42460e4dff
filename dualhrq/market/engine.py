"""The strict replay: target positions -> checked orders -> fills at the quotes with costs -> P&L.

At every step (a bar's closing quote) each symbol's order is its target
position minus its current position. A sell is split into the part that
closes a long position and the short sale beyond it. The order is checked
against the market's rule state before it can trade:

- ``PAUSE``: an LULD trading pause is in effect;
- ``BAND``: its execution price would lie outside the LULD price band;
- ``SSR``: the short-sale part, under Rule 201, would print at or below the
  national best bid (the long part of the same sell still trades);
- ``NO_QUOTE``: no quote or no traded volume at that step.

Rejected quantity is not queued: the next step's order is again the target
minus the position. Fills cross the spread (buy at the ask, sell at the bid)
and pay slippage and commission (``costs.CostModel``). Positions are marked
at the mid (the last mid seen when a quote is missing); short positions pay
their borrow fee at each day's last step.

Every step updates all symbols as numpy arrays; ``dualhrq.market.loop`` is
the same replay as a plain per-bar loop, kept as its readable twin and the
throughput baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from dualhrq.market.costs import CostModel, bar_volatility
from dualhrq.market.grid import MarketGrid
from dualhrq.market.luld import LULDState, luld_state
from dualhrq.market.ssr import short_sale_allowed, ssr_restricted

OK, PAUSE, BAND, SSR, NO_QUOTE = 0, 1, 2, 3, 4
REASONS = {PAUSE: "luld_pause", BAND: "luld_band", SSR: "ssr_short_at_or_below_bid", NO_QUOTE: "no_quote"}


@dataclass(frozen=True)
class RuleState:
    """The market's rule state at every step: Rule 201 and LULD."""

    ssr: np.ndarray
    luld: LULDState

    @classmethod
    def of(cls, grid: MarketGrid) -> RuleState:
        return cls(ssr=ssr_restricted(grid), luld=luld_state(grid))


@dataclass(frozen=True)
class Replay:
    """(T, N) per-step records of one replay (positions after the step's fill)."""

    grid: MarketGrid
    rules: RuleState
    target: np.ndarray
    order: np.ndarray
    fill: np.ndarray
    short_fill: np.ndarray  # the part of ``fill`` that is a short sale (shares, >= 0)
    price: np.ndarray  # execution price, NaN without a fill
    reason: np.ndarray  # int8 rejection code, OK where nothing was refused
    position: np.ndarray
    spread_cost: np.ndarray
    impact_cost: np.ndarray
    commission: np.ndarray
    borrow: np.ndarray  # charged at each day's last step
    equity: np.ndarray  # cash + marked positions, per symbol

    def per_step(self) -> pl.DataFrame:
        """One row per step: portfolio P&L (net and gross of costs), costs, exposure and counts."""
        pnl = np.diff(np.vstack([np.zeros((1, self.equity.shape[1])), self.equity]), axis=0).sum(axis=1)
        costs = {k: getattr(self, k).sum(axis=1) for k in ("spread_cost", "impact_cost", "commission", "borrow")}
        mark = _marks(self.grid)
        value = self.position * mark
        return pl.DataFrame({
            "ts": self.grid.bar_ts, "pnl": pnl, "gross_pnl": pnl + sum(costs.values()), **costs,
            "gross_exposure": np.abs(value).sum(axis=1), "net_exposure": value.sum(axis=1),
            "traded_value": (np.abs(self.fill) * np.nan_to_num(self.price)).sum(axis=1),
            "fills": (self.fill != 0).sum(axis=1), "rejections": (self.reason != OK).sum(axis=1),
        })

    def events(self) -> pl.DataFrame:
        """One row per order (a non-zero target change): its fill, price, costs and rejection reason."""
        t, s = np.nonzero(self.order != 0)
        names = np.array([""] + [REASONS[k] for k in sorted(REASONS)], dtype=object)
        return pl.DataFrame({
            "ts": self.grid.bar_ts[t], "symbol": np.asarray(self.grid.symbols, dtype=object)[s],
            "order": self.order[t, s], "fill": self.fill[t, s], "short_fill": self.short_fill[t, s],
            "price": self.price[t, s], "bid": self.grid.bid[t, s], "ask": self.grid.ask[t, s],
            "lower": self.rules.luld.lower[t, s], "upper": self.rules.luld.upper[t, s],
            "ssr": self.rules.ssr[t, s], "paused": self.rules.luld.paused[t, s],
            "rejection": pl.Series(names[self.reason[t, s]], dtype=pl.String).replace("", None),
            "commission": self.commission[t, s], "spread_cost": self.spread_cost[t, s],
            "impact_cost": self.impact_cost[t, s],
        })


def _marks(grid: MarketGrid) -> np.ndarray:
    """Mid quote, carried forward over steps without a quote (0 before a symbol's first quote)."""
    mid = grid.mid
    idx = np.where(np.isfinite(mid), np.arange(mid.shape[0])[:, None], 0)
    np.maximum.accumulate(idx, axis=0, out=idx)
    marks = mid[idx, np.arange(mid.shape[1])]
    return np.nan_to_num(marks)


def _price(qty: np.ndarray, ask: np.ndarray, bid: np.ndarray, mid: np.ndarray, slip: np.ndarray) -> np.ndarray:
    """Execution price of signed orders: the touch they cross, moved against them by ``slip`` of the mid."""
    return np.where(qty > 0, ask, bid) + np.sign(qty) * mid * slip


def replay(grid: MarketGrid, target: np.ndarray, costs: CostModel, rules: RuleState | None = None) -> Replay:
    """Trade towards ``target`` shares ((T, N), NaN = keep the position) under the rules, vectorised over symbols."""
    rules = rules if rules is not None else RuleState.of(grid)
    T, N = grid.shape
    rec = {k: np.zeros((T, N)) for k in ("order", "fill", "short_fill", "position", "spread_cost", "impact_cost",
                                         "commission", "borrow", "equity")}
    price_rec = np.full((T, N), np.nan)
    reason = np.zeros((T, N), dtype=np.int8)
    sigma = bar_volatility(grid.close, costs.vol_window)
    marks = _marks(grid)
    last_step = np.zeros(T, dtype=bool)
    last_step[grid.day_start[1:] - 1] = True
    bid, ask, volume = grid.bid, grid.ask, grid.volume
    lower, upper, paused = rules.luld.lower, rules.luld.upper, rules.luld.paused
    pos = np.zeros(N)
    cash = np.zeros(N)
    displacement = np.zeros(N)
    prev_time = int(grid.time_us[0])
    for t in range(T):
        now = int(grid.time_us[t])
        displacement *= costs.decay((now - prev_time) / 1e6)
        prev_time = now
        order = np.where(np.isfinite(target[t]), target[t] - pos, 0.0)
        want = order != 0
        mid = 0.5 * (bid[t] + ask[t])
        quoted = np.isfinite(mid) & (volume[t] > 0)
        long_part = np.where(order < 0, np.minimum(-order, np.maximum(pos, 0.0)), 0.0)
        short_part = np.where(order < 0, -order - long_part, 0.0)
        price = _price(order, ask[t], bid[t], mid, costs.slip(order, volume[t], sigma[t], displacement))
        with np.errstate(invalid="ignore"):
            in_band = (price >= lower[t]) & (price <= upper[t])
        ok = want & quoted & ~paused[t] & in_band
        short_ok = (short_part == 0) | short_sale_allowed(price, bid[t], rules.ssr[t])
        qty = np.where(ok, np.where(short_ok, order, -long_part), 0.0)
        code = np.where(~want, OK, np.where(~quoted, NO_QUOTE, np.where(paused[t], PAUSE, np.where(
            ~in_band, BAND, np.where(~short_ok, SSR, OK)))))
        filled = _price(qty, ask[t], bid[t], mid, costs.slip(qty, volume[t], sigma[t], displacement))
        price = np.where(qty != 0, filled, np.nan)
        fill_abs = np.abs(qty)
        spread = np.where(qty != 0, fill_abs * 0.5 * (ask[t] - bid[t]), 0.0)
        impact = np.where(qty != 0, qty * (price - mid) - spread, 0.0)
        fee = costs.commission(qty, price)
        displacement += costs.push(qty, volume[t])
        cash -= np.where(qty != 0, qty * price, 0.0) + fee
        pos_before = pos
        pos = pos + qty
        short = np.where(qty < 0, np.maximum(-pos, 0.0) - np.maximum(-pos_before, 0.0), 0.0)
        if last_step[t]:
            rec["borrow"][t] = costs.borrow(np.maximum(-pos, 0.0) * marks[t])
            cash -= rec["borrow"][t]
        rec["order"][t], rec["fill"][t], rec["short_fill"][t], rec["position"][t] = order, qty, short, pos
        rec["spread_cost"][t], rec["impact_cost"][t], rec["commission"][t] = spread, impact, fee
        rec["equity"][t] = cash + pos * marks[t]
        price_rec[t] = price
        reason[t] = code
    return Replay(grid=grid, rules=rules, target=target, price=price_rec, reason=reason, **rec)
