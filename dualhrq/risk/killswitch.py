"""The kill switch: halt trading and flatten the book when the day's loss or the drawdown reaches its limit.

The replay (``dualhrq.market.engine.replay(..., guard=...)``) tells the
guard the book's total P&L after every bar's fills, marked to market. The
guard measures

- the daily loss: equity at the day's open (the previous session's last
  mark, or the capital) less equity now, as a fraction of ``capital``;
- the drawdown: the running peak of equity (from ``capital``) less equity
  now, as a fraction of the peak.

A limit trips when the measure reaches it (``>=``: a 15% drawdown limit
trips at a drawdown of exactly 15%). From the next bar on trading is halted:
the engine works every position to zero through its normal order path and
ignores new decisions. ``reset_days`` lifts the halt at the first bar of the
n-th session after the trip's (1: the next session); the running peak is
then set to the equity at that point (the loss that tripped the switch has
been reviewed; the drawdown counts afresh), and the first target the book
is given is taken. Without ``reset_days`` the halt lasts to the end of the
replay. Alerts record each bar at which the drawdown crosses up through one
of ``alert_levels``; they do not halt anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np
import polars as pl

from dualhrq.config import FINITE, POSITIVE, PositiveInt, between, check_fields, invalid

Fraction = Annotated[float, between(0, 1, lo_open=True, hi_open=True)]


@dataclass(frozen=True)
class KillSwitch:
    """Loss limits that halt trading (``backtest.kill_switch``); None = no such limit."""

    daily_loss: Fraction | None = 0.03  # of capital, since the day's open
    drawdown: Fraction | None = 0.15  # below the running peak of equity
    reset_days: PositiveInt | None = None  # sessions after the trip's at whose first bar trading resumes
    alert_levels: tuple[float, ...] = ()  # drawdowns to record, ascending, each below ``drawdown``
    capital: Annotated[float, FINITE, POSITIVE] | None = None  # None: the capital of the backtest that runs it

    def __post_init__(self) -> None:
        check_fields(self)
        levels = self.alert_levels
        if isinstance(levels, str) or not hasattr(levels, "__iter__"):
            raise invalid("alert_levels", levels, "a list of drawdown fractions")
        levels = tuple(levels)
        top = self.drawdown if self.drawdown is not None else 1.0
        if not all(isinstance(x, int | float) and not isinstance(x, bool) and 0 < x < top for x in levels):
            raise invalid("alert_levels", list(levels), f"drawdown fractions in (0, {top}) (below the drawdown "
                          "limit, which halts trading)", "lower the alerts or raise drawdown")
        if any(b <= a for a, b in zip(levels, levels[1:], strict=False)):
            raise invalid("alert_levels", list(levels), "strictly ascending")
        object.__setattr__(self, "alert_levels", tuple(float(x) for x in levels))

    def guard(self, day: np.ndarray) -> KillSwitchGuard:
        """A fresh guard for one replay whose bars belong to sessions ``day`` (T,) (non-decreasing)."""
        if self.capital is None:
            raise invalid("capital", None, "a finite positive number to measure losses against",
                          "set it, or run the switch in a backtest that sets it (StrictSimBacktest does)")
        return KillSwitchGuard(self, np.asarray(day))


@dataclass
class Trip:
    """One trip: the bar whose marks breached, the limit, the loss (a fraction), the first bar the book was
    flat while halted (None: never) and the bar trading resumed (None: never)."""

    bar: int
    limit: str
    loss: float
    flat_bar: int | None = None
    resume_bar: int | None = None


class KillSwitchGuard:
    """The per-bar state of a kill switch over one replay (``dualhrq.market.engine.TradingGuard``)."""

    def __init__(self, switch: KillSwitch, day: np.ndarray) -> None:
        self.switch = switch
        self.day = day
        self.trips: list[Trip] = []
        self.alerts: list[tuple[int, float]] = []  # (bar, level)
        self.halted = False
        self._resume_day: int | None = None
        self.capital = float(switch.capital)
        self._peak = self._day_open = self._equity = self.capital
        self._above = [False] * len(switch.alert_levels)
        self._next = 0

    def update(self, step: int, pnl: float, flat: bool) -> bool:
        """The book's total P&L and flatness after ``step``; returns whether trading is halted from the next
        bar on."""
        if step != self._next:
            raise ValueError(f"a kill-switch guard serves one replay bar by bar: expected bar {self._next}, got "
                             f"{step}. Fix: take a fresh guard from KillSwitch.guard for each replay.")
        self._next += 1
        s = self.switch
        if step == 0 or self.day[step] != self.day[step - 1]:
            self._day_open = self._equity
        equity = self.capital + pnl
        self._peak = max(self._peak, equity)
        drawdown = (self._peak - equity) / self._peak if self._peak > 0 else float("inf")
        daily = (self._day_open - equity) / self.capital
        for i, level in enumerate(s.alert_levels):
            if drawdown >= level and not self._above[i]:
                self.alerts.append((step, level))
            self._above[i] = drawdown >= level
        if self.halted:
            if flat and self.trips[-1].flat_bar is None:
                self.trips[-1].flat_bar = step
        else:
            breach = next(((name, loss) for name, loss, limit in (("daily_loss", daily, s.daily_loss),
                                                                  ("drawdown", drawdown, s.drawdown))
                           if limit is not None and loss >= limit), None)
            if breach is not None:
                self.trips.append(Trip(step, *breach, flat_bar=step if flat else None))
                self.halted = True
                self._resume_day = int(self.day[step]) + s.reset_days if s.reset_days is not None else None
        self._equity = equity
        after = step + 1
        if self.halted and self._resume_day is not None and after < len(self.day) and \
                self.day[after] >= self._resume_day:
            self.halted = False
            self.trips[-1].resume_bar = after
            self._peak = equity
        return self.halted


def trips_frame(trips: list[Trip], ts: np.ndarray) -> pl.DataFrame:
    """One row per trip on bars ``ts``: ts (the breach bar), limit, loss, bars_to_flat and flat_ts (null: the
    book was never flat while halted), halted_bars (from the breach to the resume or the end) and resume_ts."""
    us = np.asarray(ts).astype("datetime64[us]").astype(np.int64)

    def at(bars: list[int | None]) -> pl.Series:
        return pl.Series([None if b is None else int(us[b]) for b in bars], dtype=pl.Int64).cast(pl.Datetime("us"))

    return pl.DataFrame({
        "ts": at([t.bar for t in trips]),
        "limit": pl.Series([t.limit for t in trips], dtype=pl.String),
        "loss": pl.Series([t.loss for t in trips], dtype=pl.Float64),
        "bars_to_flat": pl.Series([None if t.flat_bar is None else t.flat_bar - t.bar for t in trips],
                                  dtype=pl.Int64),
        "halted_bars": pl.Series([(us.size if t.resume_bar is None else t.resume_bar) - t.bar - 1 for t in trips],
                                 dtype=pl.Int64),
        "flat_ts": at([t.flat_bar for t in trips]),
        "resume_ts": at([t.resume_bar for t in trips]),
    })


def alerts_frame(alerts: list[tuple[int, float]], ts: np.ndarray) -> pl.DataFrame:
    """One row per alert crossing on bars ``ts``: ts, level."""
    ts = np.asarray(ts).astype("datetime64[us]")
    return pl.DataFrame({"ts": pl.Series(ts[[b for b, _ in alerts]], dtype=pl.Datetime("us")),
                         "level": pl.Series([level for _, level in alerts], dtype=pl.Float64)})
