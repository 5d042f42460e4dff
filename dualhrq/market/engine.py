"""The strict replay: target positions -> working orders -> fills at the book with costs -> P&L.

A finite target at a step that differs from the symbol's last target is a
new decision; the order works towards it (target minus position) from that
step on, at every step, until it is reached or replaced. At each step (a
bar's closing quote):

1. The quotes are moved by what is left of the replay's own transient
   impact (``exp_decay``; zero for the other models), and the LULD state
   machine steps with those quotes, so limit states, bands and the Rule 201
   bid test see the book the fills trade against.
2. A resting short-sale limit (see 4) fills if the bar traded through its
   price, and while trading is not paused, the price is inside the band and,
   under Rule 201, above the bid in force at the fill.
3. The order is checked: ``NO_QUOTE`` (no quote or no volume), ``PAUSE`` (an
   LULD pause), ``BAND`` (the execution price would lie outside the band).
   A sell is split into the part that closes a long position and the short
   sale beyond it. Marketable fills cross the spread (buy at the ask, sell at
   the bid), move further by the impact model and are rounded away from the
   touch onto the tick grid, so a buy never prints below the ask nor a sell
   above the bid.
4. ``SSR``: under Rule 201 a marketable short sale would print at or below
   the bid, so the short part is posted as a limit sell one tick above the
   bid instead; it rests until it fills (2), a new decision replaces it, or
   the day ends.
5. ``CAP``: the step's fills (resting and marketable) are limited to
   ``participation`` of the bar's volume. The rest of the order carries to
   later steps (``remainder="carry"``) or is cancelled (``"cancel"``, then
   the symbol trades again only on its next decision); with ``cancel`` an
   order refused by a rule is cancelled the same way.

A ``guard`` (a kill switch, ``dualhrq.risk.killswitch``) is told the
replay's total P&L and whether the book is flat after every step; when it
answers that trading is halted, from the next step on every symbol's target
is 0 and decisions are ignored until it lifts the halt. The book is
flattened through the same order path (checks, spread, impact, cap), so a
short is bought back under Rule 201 and nothing trades in an LULD pause;
resting short-sale limits are cancelled. The first finite target after the
halt lifts is a new decision. ``Replay.halted`` marks the halted steps.

Positions are marked at the undisplaced mid (the last one seen when a quote
is missing). Short positions held at a day's close pay borrow for the
calendar days until the next session. Every step updates all symbols as
numpy arrays; prices are exact integers in units of $0.0001 (``ticks``) and
are reported in dollars. ``dualhrq.market.audit`` re-checks every fill with
its own reading of the rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Protocol

import numpy as np
import polars as pl

from dualhrq.config import between, check_fields, one_of
from dualhrq.market.costs import CostModel, bar_volatility
from dualhrq.market.grid import MarketGrid
from dualhrq.market.luld import LULDMachine, LULDState
from dualhrq.market.ssr import ssr_restricted
from dualhrq.market.ticks import ceil_to_tick, floor_to_tick, tick, to_dollars, to_units

OK, PAUSE, BAND, SSR, NO_QUOTE, CAP = 0, 1, 2, 3, 4, 5
REASONS = {PAUSE: "luld_pause", BAND: "luld_band", SSR: "ssr_short_posted_above_bid", NO_QUOTE: "no_quote",
           CAP: "participation_cap"}


@dataclass(frozen=True)
class Execution:
    """How orders meet the bar's volume (``backtest.execution``)."""

    participation: Annotated[float, between(0, 1, lo_open=True)] = 0.10  # share of the bar's volume per step
    remainder: Annotated[str, one_of(("carry", "cancel"))] = "carry"

    def __post_init__(self) -> None:
        check_fields(self)


class TradingGuard(Protocol):
    """What the replay asks after each step: is trading halted from the next step on?"""

    def update(self, step: int, pnl: float, flat: bool) -> bool:
        """``pnl``: the replay's total P&L (all symbols, net of costs) after ``step``; ``flat``: no position."""
        ...


@dataclass(frozen=True)
class RuleState:
    """The market's rule state at every step as the replay saw it: Rule 201 and LULD."""

    ssr: np.ndarray
    luld: LULDState


@dataclass(frozen=True)
class Replay:
    """(T, N) per-step records of one replay (positions after the step's fills)."""

    grid: MarketGrid
    rules: RuleState
    costs: CostModel
    execution: Execution
    target: np.ndarray
    order: np.ndarray  # the working order before the step's fills (target minus position)
    fill: np.ndarray  # all shares filled at the step: ``marketable`` plus ``passive``
    marketable: np.ndarray  # shares filled by the marketable order, at ``price``
    passive: np.ndarray  # shares filled by a resting limit sell, at ``limit_price``
    short_fill: np.ndarray  # the part of ``fill`` that is a short sale (shares, >= 0)
    price: np.ndarray  # price of the marketable part, NaN without one
    limit_price: np.ndarray  # price of the resting-limit part, NaN without one
    quote_shift: np.ndarray  # how far the replay's transient impact moved both quotes ($)
    reason: np.ndarray  # int8 code of the check that held the order back, OK where none did
    position: np.ndarray
    spread_cost: np.ndarray
    impact_cost: np.ndarray
    commission: np.ndarray
    borrow: np.ndarray  # charged at each day's last step
    equity: np.ndarray  # cash + marked positions, per symbol
    halted: np.ndarray  # (T,) bool: trading halted by the guard at the step (the book is flattened)

    def traded_value(self) -> np.ndarray:
        return (np.abs(self.marketable) * np.nan_to_num(self.price)
                + np.abs(self.passive) * np.nan_to_num(self.limit_price))

    def per_step(self) -> pl.DataFrame:
        """One row per step: portfolio P&L (net and gross of costs), costs, exposure and counts."""
        pnl = np.diff(np.vstack([np.zeros((1, self.equity.shape[1])), self.equity]), axis=0).sum(axis=1)
        costs = {k: getattr(self, k).sum(axis=1) for k in ("spread_cost", "impact_cost", "commission", "borrow")}
        value = self.position * marks(self.grid)
        return pl.DataFrame({
            "ts": self.grid.bar_ts, "pnl": pnl, "gross_pnl": pnl + sum(costs.values()), **costs,
            "gross_exposure": np.abs(value).sum(axis=1), "net_exposure": value.sum(axis=1),
            "traded_value": self.traded_value().sum(axis=1),
            "fills": (self.fill != 0).sum(axis=1), "rejections": (self.reason != OK).sum(axis=1),
            "halted": self.halted,
        })

    def events(self) -> pl.DataFrame:
        """One row per working order or fill: its fills, prices, costs and the check that held it back."""
        t, s = np.nonzero((self.order != 0) | (self.fill != 0))
        names = np.array([""] + [REASONS[k] for k in sorted(REASONS)], dtype=object)
        return pl.DataFrame({
            "ts": self.grid.bar_ts[t], "symbol": np.asarray(self.grid.symbols, dtype=object)[s],
            "order": self.order[t, s], "fill": self.fill[t, s], "passive": self.passive[t, s],
            "short_fill": self.short_fill[t, s], "price": self.price[t, s], "limit_price": self.limit_price[t, s],
            "bid": self.grid.bid[t, s] + self.quote_shift[t, s], "ask": self.grid.ask[t, s] + self.quote_shift[t, s],
            "lower": self.rules.luld.lower[t, s], "upper": self.rules.luld.upper[t, s],
            "ssr": self.rules.ssr[t, s], "paused": self.rules.luld.paused[t, s],
            "rejection": pl.Series(names[self.reason[t, s]], dtype=pl.String).replace("", None),
            "commission": self.commission[t, s], "spread_cost": self.spread_cost[t, s],
            "impact_cost": self.impact_cost[t, s],
        })


def marks(grid: MarketGrid) -> np.ndarray:
    """Mid quote, carried forward over steps without a quote (0 before a symbol's first quote)."""
    mid = grid.mid
    idx = np.where(np.isfinite(mid), np.arange(mid.shape[0])[:, None], 0)
    np.maximum.accumulate(idx, axis=0, out=idx)
    return np.nan_to_num(mid[idx, np.arange(mid.shape[1])])


def calendar_days_held(days: tuple[date, ...]) -> np.ndarray:
    """Calendar days from each session to the next (the last one: to the next weekday)."""
    following = list(days[1:])
    if days:
        last = days[-1] + timedelta(days=1)
        while last.weekday() >= 5:
            last += timedelta(days=1)
        following.append(last)
    return np.array([(b - a).days for a, b in zip(days, following, strict=True)], dtype=np.int64)


def quote_shift(displacement: np.ndarray, mid_units: np.ndarray) -> np.ndarray:
    """The transient displacement (a fraction of mid) as a move of both quotes, in whole ticks (units)."""
    step = tick(mid_units)
    with np.errstate(invalid="ignore"):
        shift = np.rint(displacement * mid_units / step) * step
    return np.where(np.isnan(shift), 0.0, shift)


def _in_band(price: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (np.isnan(lower) | (price >= lower)) & (np.isnan(upper) | (price <= upper))


def replay(grid: MarketGrid, target: np.ndarray, costs: CostModel, execution: Execution | None = None,
           guard: TradingGuard | None = None) -> Replay:
    """Trade towards ``target`` shares ((T, N), NaN = no new decision) under the rules, vectorised over symbols;
    ``guard`` may halt trading and flatten the book (see the module docstring)."""
    ex = execution if execution is not None else Execution()
    T, N = grid.shape
    rec = {k: np.zeros((T, N)) for k in ("order", "fill", "marketable", "passive", "short_fill", "position",
                                         "spread_cost", "impact_cost", "commission", "borrow", "equity",
                                         "quote_shift")}
    price_rec, limit_rec = np.full((T, N), np.nan), np.full((T, N), np.nan)
    reason = np.zeros((T, N), dtype=np.int8)
    halted, halt = np.zeros(T, dtype=bool), False
    ssr = ssr_restricted(grid)
    machine = LULDMachine(grid)
    sigma = bar_volatility(grid.close, costs.vol_window)
    mark = marks(grid)
    held_days = calendar_days_held(grid.days)
    last_step = np.zeros(T, dtype=bool)
    last_step[grid.day_start[1:] - 1] = True
    bid_u, ask_u, high_u, volume = to_units(grid.bid), to_units(grid.ask), machine.high, grid.volume
    pos, cash, displacement = np.zeros(N), np.zeros(N), np.zeros(N)
    goal, decided = np.zeros(N), np.full(N, np.nan)  # the order's target; the last target that was a decision
    rest_qty, rest_px = np.zeros(N), np.full(N, np.nan)  # resting short-sale limit: shares to sell, price (units)
    prev_time = int(grid.time_us[0])
    for t in range(T):
        now = int(grid.time_us[t])
        displacement *= costs.decay((now - prev_time) / 1e6)
        prev_time = now
        shift = quote_shift(displacement, 0.5 * (bid_u[t] + ask_u[t]))
        bid, ask = bid_u[t] + shift, ask_u[t] + shift
        lower, upper, paused = machine.step(t, bid, ask)
        mid = 0.5 * (bid + ask)
        raw_mid = to_dollars(0.5 * (bid_u[t] + ask_u[t]))
        quoted = np.isfinite(mid) & (volume[t] > 0)
        room = np.where(quoted, np.floor(ex.participation * np.nan_to_num(volume[t])), 0.0)  # whole shares
        if halt:  # flatten: resting short sales cancelled, every goal 0, decisions ignored until the halt lifts
            halted[t] = True
            goal, rest_qty, decided = np.zeros(N), np.zeros(N), np.full(N, np.nan)

        # a resting short-sale limit meets the bar's trades
        with np.errstate(invalid="ignore"):
            can = ((rest_qty > 0) & quoted & ~paused & (high_u[t] > rest_px) & _in_band(rest_px, lower, upper)
                   & (~ssr[t] | (rest_px > bid)))
        sold = np.where(can, np.minimum(rest_qty, room), 0.0)
        rest_qty -= sold
        room -= sold
        pos_before = pos.copy()
        pos = pos - sold

        # the decision and its working order
        new = np.isfinite(target[t]) & (target[t] != decided) & ~halted[t]
        decided = np.where(new, target[t], decided)
        goal = np.where(new, target[t], goal)
        rest_qty = np.where(new, 0.0, rest_qty)
        order = goal - pos + rest_qty
        long_part = np.where(order < 0, np.minimum(-order, np.maximum(pos, 0.0)), 0.0)
        short_part = np.where(order < 0, -order - long_part, 0.0)
        post = ssr[t] & (short_part > 0)  # Rule 201: the short part cannot sell at the bid; post it above
        marketable = np.where(order > 0, order, -(long_part + np.where(post, 0.0, short_part)))
        qty = np.sign(marketable) * np.minimum(np.abs(marketable), room)
        slip = costs.slip(qty, volume[t], sigma[t])
        with np.errstate(invalid="ignore"):
            touch = np.where(qty > 0, ceil_to_tick(ask + mid * slip), floor_to_tick(bid - mid * slip))
            in_band = _in_band(touch, lower, upper)
        ok = quoted & ~paused & in_band
        qty = np.where(ok, qty, 0.0)
        limit_at = bid + tick(bid)
        posted = post & quoted & ~paused & _in_band(limit_at, lower, upper)
        rest_px = np.where(posted, limit_at, rest_px)
        rest_qty = np.where(posted, rest_qty + short_part, rest_qty)
        want = order != 0
        capped = np.abs(qty) < np.abs(marketable)
        refused = (~in_band & (marketable != 0)) | (post & ~posted)
        reason[t] = np.where(~want, OK, np.where(~quoted, NO_QUOTE, np.where(paused, PAUSE, np.where(
            refused, BAND, np.where(post, SSR, np.where(capped, CAP, OK))))))

        # the step's fills and their costs
        price = np.where(qty != 0, touch, np.nan)
        pos = pos + qty
        fill = qty - sold
        cash -= np.nan_to_num(qty * to_dollars(price)) - sold * to_dollars(np.where(sold > 0, rest_px, 0.0))
        spread = np.abs(qty) * to_dollars(0.5 * (ask - bid)) - sold * to_dollars(np.where(sold > 0, rest_px - mid, 0))
        paid = np.nan_to_num(qty * (to_dollars(price) - raw_mid)) - sold * np.nan_to_num(
            to_dollars(np.where(sold > 0, rest_px, 0.0)) - raw_mid)
        fee = costs.commission(qty, to_dollars(price)) + costs.commission(-sold, to_dollars(rest_px))
        cash -= fee
        displacement += costs.push(qty, volume[t])
        short = np.where(fill < 0, np.maximum(-pos, 0.0) - np.maximum(-pos_before, 0.0), 0.0)
        if ex.remainder == "cancel":
            goal = pos - rest_qty
        if last_step[t]:  # day orders expire; overnight shorts pay borrow until the next session
            goal = np.where(ex.remainder == "cancel", pos, goal)
            rest_qty[:] = 0.0
            rec["borrow"][t] = costs.borrow(np.maximum(-pos, 0.0) * mark[t], int(held_days[grid.day[t]]))
            cash -= rec["borrow"][t]
        rec["order"][t], rec["fill"][t], rec["short_fill"][t] = order, fill, short
        rec["marketable"][t], rec["passive"][t] = qty, -sold
        rec["position"][t], rec["quote_shift"][t] = pos, to_dollars(shift)
        rec["spread_cost"][t], rec["impact_cost"][t], rec["commission"][t] = spread, paid - spread, fee
        rec["equity"][t] = cash + pos * mark[t]
        price_rec[t], limit_rec[t] = to_dollars(price), np.where(sold > 0, to_dollars(rest_px), np.nan)
        if guard is not None:
            halt = bool(guard.update(t, float(rec["equity"][t].sum()), not pos.any()))
    rules = RuleState(ssr=ssr, luld=machine.state)
    return Replay(grid=grid, rules=rules, costs=costs, execution=ex, target=target, price=price_rec,
                  limit_price=limit_rec, reason=reason, halted=halted, **rec)
