"""The dual-book integrator: one portfolio of several daily return streams, walked forward point in time.

The streams are books (HRM daily, A options, B intraday) or assets, each a
daily net return on its own capital. Day ``t``'s portfolio return is earned by
the weights decided at the close of day ``t - 1`` from the returns of days up
to ``t - 1`` only (and the regime known at that close); between rebalances
the weights drift with the books, ``w_i (1 + r_i) / (1 + w'r)``. A day a book
did not trade counts as a zero return.

Each close, a rebalance is due when any trigger of :class:`Rebalance` fires:
the calendar (the next day opens a new day, ISO week or month, so monthly
rebalances put new weights in force on the first trading day of each month),
the drift band (some drifted weight is at least ``drift_band`` away from its
target: the band is inclusive, up to 1e-12 for rounding), or a change of
regime. Until ``min_history`` days of returns are known the target is equal
weights, held from the first day (invested, not flat, so every book earns from
the start); at that close the allocator takes over (reason ``min_history``).
The first day opens the portfolio from cash (reason ``initial``).

A rebalance trades ``|w_target - w_drifted|``; its cost, ``cost_bps`` of the
traded weight, is charged in the row of the first day the new weights earn:
``net = w'r - cost`` (as fractions of the portfolio's value at the trade).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import polars as pl

from dualhrq.config import NonNegative, at_least, between, check_fields, invalid, one_of
from dualhrq.errors import DataError
from dualhrq.portfolio.allocation import Allocator, FixedWeights, RiskBudgeting, check_simplex, risk_contributions
from dualhrq.portfolio.regime import REGIMES

__all__ = ["CALENDARS", "Integrator", "PortfolioResult", "Rebalance"]

CALENDARS = ("daily", "weekly", "monthly")
BAND_TOLERANCE = 1e-12


@dataclass(frozen=True)
class Rebalance:
    """When the weights go back to target: a calendar period (None: never by date), a drift band on the
    absolute weight gap (None: no band), and on a change of regime."""

    calendar: Annotated[str, one_of(CALENDARS)] | None = "monthly"
    drift_band: Annotated[float, between(0, 1, lo_open=True)] | None = None
    on_regime_change: bool = False

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class PortfolioResult:
    """What :meth:`Integrator.run` produces; every frame is keyed by ``ts``.

    ``returns``: gross (``w'r``), cost and net of each day. ``weights``: the
    weights in force during each day's return. ``rebalances``: the first day
    each new target is in force and why (triggers joined by ``+``).
    ``risk_contributions``: the target's share of variance per book at each
    rebalance, from the allocator's covariance of the days known at that close
    (null while fewer than two days are known).
    """

    returns: pl.DataFrame
    weights: pl.DataFrame
    rebalances: pl.DataFrame
    risk_contributions: pl.DataFrame


@dataclass(frozen=True)
class Integrator:
    """Walk-forward combination of return streams (see the module docstring).

    ``regime_budgets`` (regime name -> risk budget, one entry per book) needs
    a :class:`RiskBudgeting` allocator: at each rebalance the budget of the
    regime known at that close replaces the allocator's own; regimes not in
    the mapping, and days without a regime, use the allocator's own budget.
    """

    allocator: Allocator
    rebalance: Rebalance = Rebalance()
    cost_bps: NonNegative = 1.0
    min_history: Annotated[int, at_least(2)] = 60
    regime_budgets: Mapping[str, Sequence[float]] | None = None

    def __post_init__(self) -> None:
        check_fields(self)
        if not isinstance(self.allocator, Allocator):
            raise invalid("allocator", self.allocator, "an allocator with weights(history, budget) and "
                          "covariance(history), e.g. RiskBudgeting(window=60)")
        if not isinstance(self.rebalance, Rebalance):
            raise invalid("rebalance", self.rebalance, "a Rebalance")
        if self.regime_budgets is not None:
            object.__setattr__(self, "regime_budgets", self._checked_budgets(self.regime_budgets))

    def _checked_budgets(self, budgets: Mapping[str, Sequence[float]]) -> dict[str, tuple[float, ...]]:
        if not isinstance(self.allocator, RiskBudgeting):
            raise invalid("regime_budgets", budgets, "None unless the allocator is RiskBudgeting (it is "
                          f"{type(self.allocator).__name__})", "regime budgets need allocator=RiskBudgeting(...).")
        if not isinstance(budgets, Mapping) or not budgets:
            raise invalid("regime_budgets", budgets, f"a non-empty mapping of regimes {list(REGIMES)} to budgets")
        unknown = sorted(str(k) for k in budgets if k not in REGIMES)
        if unknown:
            raise invalid("regime_budgets", unknown, f"keys among {list(REGIMES)}", "correct the regime names.")
        own = self.allocator.budget
        k = None if own is None else len(own)
        checked = {}
        for name, budget in budgets.items():
            checked[name] = tuple(float(v) for v in check_simplex(budget, f"regime_budgets.{name}", k))
            k = len(checked[name])
        return checked

    def run(self, books: pl.DataFrame, regime: pl.DataFrame | None = None) -> PortfolioResult:
        """The portfolio over ``books`` (``ts`` + one column of daily net returns per book; null: no trade),
        with ``regime`` (``ts``, ``regime``, as :meth:`VolatilityRegime.classify` gives) where the rebalance
        or the budgets depend on it."""
        ts, names, r = _books(books)
        known = self._regimes(ts, regime)
        self.check_sizes(len(names))
        period = _periods(ts, self.rebalance.calendar)
        n_days, k = r.shape
        held = np.empty((n_days, k))
        cost = np.zeros(n_days)
        events: list[tuple[int, str, np.ndarray]] = []
        target = np.full(k, 1.0 / k)
        w = np.zeros(k)  # the opening trade is from cash
        for t in range(n_days):
            reasons = ["initial"] if t == 0 else self._triggers(t, w, target, period, known)
            if reasons:
                history = r[:t]
                if t >= self.min_history:
                    budget = self.regime_budgets.get(known[t - 1]) if self.regime_budgets else None
                    try:
                        target = self.allocator.weights(history, None if budget is None else np.asarray(budget))
                    except DataError as err:
                        raise DataError(f"books {names} at the close of {ts[t - 1]}: {err}") from None
                cost[t] = self.cost_bps * 1e-4 * float(np.abs(target - w).sum())
                events.append((t, "+".join(reasons), self._contributions(history, target)))
                w = target
            held[t] = w
            growth = 1.0 + float(w @ r[t])
            if growth <= 0:
                raise DataError(f"books: the portfolio loses all its value on {ts[t]}; drifted weights are undefined.")
            w = w * (1.0 + r[t]) / growth
        return self._result(ts, names, r, held, cost, events)

    def check_sizes(self, k: int) -> None:
        """Budgets and fixed weights have one entry per book."""
        if isinstance(self.allocator, FixedWeights):
            check_simplex(self.allocator.target, "allocator.weights", k)
        if isinstance(self.allocator, RiskBudgeting) and self.allocator.budget is not None:
            check_simplex(self.allocator.budget, "allocator.budget", k)
        for name, budget in (self.regime_budgets or {}).items():
            check_simplex(budget, f"regime_budgets.{name}", k)

    def _triggers(self, t: int, drifted: np.ndarray, target: np.ndarray, period: np.ndarray | None,
                  known: list[str | None]) -> list[str]:
        """Why the weights for day ``t`` are set anew at the close of day ``t - 1`` (empty: they drift on)."""
        reasons = []
        if t == self.min_history:
            reasons.append("min_history")
        if period is not None and period[t] != period[t - 1]:
            reasons.append("calendar")
        band = self.rebalance.drift_band
        if band is not None and np.max(np.abs(drifted - target)) >= band - BAND_TOLERANCE:
            reasons.append("drift_band")
        if (self.rebalance.on_regime_change and t >= 2 and None not in known[t - 2:t]
                and known[t - 1] != known[t - 2]):
            reasons.append("regime_change")
        return reasons

    def _contributions(self, history: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Each book's share of variance at ``target`` under the allocator's covariance of ``history``."""
        if history.shape[0] < 2:
            return np.full(target.size, np.nan)
        covariance = self.allocator.covariance(history)
        if not float(target @ covariance @ target) > 0:
            return np.full(target.size, np.nan)
        return risk_contributions(target, covariance)

    def _regimes(self, ts: pl.Series, regime: pl.DataFrame | None) -> list[str | None]:
        """The regime known at each day's close (the latest at or before it), None where none is."""
        needed = self.rebalance.on_regime_change or self.regime_budgets is not None
        if regime is None:
            if needed:
                raise DataError("regime is None, but the integrator rebalances on regime changes or has "
                                "regime_budgets. Fix: pass regime=VolatilityRegime().classify(market).")
            return [None] * ts.len()
        missing = [c for c in ("ts", "regime") if c not in regime.columns]
        if missing:
            raise DataError(f"regime lacks columns {missing}; it needs ts and regime.")
        frame = regime.select(pl.col("ts").cast(pl.Datetime("us")), pl.col("regime").cast(pl.String))
        unknown = sorted(set(frame["regime"].drop_nulls().unique().to_list()) - set(REGIMES))
        if unknown:
            raise DataError(f"regime.regime holds {unknown}; a regime is one of {list(REGIMES)} or null.")
        if not frame["ts"].is_sorted() or frame["ts"].is_duplicated().any():
            raise DataError("regime.ts must be strictly increasing. Fix: sort by ts and drop repeated days.")
        days = pl.DataFrame({"ts": ts})
        return days.join_asof(frame, on="ts", strategy="backward")["regime"].to_list()

    def _result(self, ts: pl.Series, names: list[str], r: np.ndarray, held: np.ndarray, cost: np.ndarray,
                events: list[tuple[int, str, np.ndarray]]) -> PortfolioResult:
        gross = (held * r).sum(axis=1)
        at = [ts[i] for i, _, _ in events]
        shares = np.array([c for _, _, c in events])
        return PortfolioResult(
            returns=pl.DataFrame({"ts": ts, "gross": gross, "cost": cost, "net": gross - cost}),
            weights=pl.DataFrame({"ts": ts, **{n: held[:, j] for j, n in enumerate(names)}}),
            rebalances=pl.DataFrame({"ts": at, "reason": [why for _, why, _ in events]},
                                    schema={"ts": pl.Datetime("us"), "reason": pl.String}),
            risk_contributions=pl.DataFrame({"ts": at, **{n: shares[:, j] for j, n in enumerate(names)}},
                                            schema={"ts": pl.Datetime("us"), **{n: pl.Float64 for n in names}})
            .fill_nan(None))


def _books(books: pl.DataFrame) -> tuple[pl.Series, list[str], np.ndarray]:
    """``ts`` (Datetime("us"), strictly increasing), the book names and their returns (null -> 0), checked."""
    if "ts" not in books.columns:
        raise DataError("books lacks column ts; it needs ts and one column of daily net returns per book.")
    names = [c for c in books.columns if c != "ts"]
    if not names:
        raise DataError("books has no book columns; give one column of daily net returns per book.")
    if not isinstance(books.schema["ts"], pl.Datetime | pl.Date):
        raise DataError(f"books.ts must be a date or datetime column, got {books.schema['ts']}.")
    ts = books["ts"].cast(pl.Datetime("us"))
    steps = ts.diff().drop_nulls().dt.total_microseconds()
    if ts.len() == 0 or ts.null_count() or not (steps > 0).all():
        raise DataError("books.ts must be non-empty, non-null and strictly increasing. Fix: sort by ts and drop "
                        "repeated days.")
    for name in names:
        column = books[name]
        if not column.dtype.is_numeric():
            raise DataError(f"books.{name} must hold numeric returns, got {column.dtype}.")
        if column.null_count() == column.len():
            raise DataError(f"books.{name} is null on every day; a book that never trades cannot be allocated. "
                            "Fix: drop the column.")
        values = column.cast(pl.Float64).fill_null(0.0)
        bad = ~values.is_finite() | (values < -1.0)
        if bad.any():
            raise DataError(f"books.{name} on {ts.filter(bad)[0]} is {values.filter(bad)[0]!r}; a daily return "
                            "must be finite and >= -1. Fix: correct the return or mark a non-trading day null.")
    r = books.select(pl.col(n).cast(pl.Float64).fill_null(0.0) for n in names).to_numpy()
    return ts, names, r


def _periods(ts: pl.Series, calendar: str | None) -> np.ndarray | None:
    """A label per day that changes when a new calendar period begins."""
    if calendar is None:
        return None
    if calendar == "daily":
        return np.arange(ts.len())
    if calendar == "weekly":
        return (ts.dt.iso_year() * 100 + ts.dt.week()).to_numpy()
    return (ts.dt.year() * 100 + ts.dt.month()).to_numpy()
