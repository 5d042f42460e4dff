"""Pre-trade limits: every new decision is checked against the book it would leave before it reaches the market.

A decision is a finite target (shares) that differs from the symbol's
target in force. Walking the bars, and the symbols of a bar in order, each
decision is valued at the symbol's mid (the last one seen where a bar has no
quote) and checked against the book of targets in force with it applied:
weights ``w_i = shares_i * mid_i / capital``, per symbol ``|w_i|``
(``max_position``), gross ``sum |w|`` (``max_gross``, and the strategy's own
``max_strategy_gross``), net ``|sum w|`` (``max_net``), the concentration
``max |w_i| / sum |w|`` once the book holds at least ``min_names`` names
(``max_concentration``), and the order itself, ``|target change|`` over the
symbol's average daily volume of the previous ``adv_days`` sessions
(``max_adv_share``). A decision that takes a measure above its bound, or
further above it, is rejected and the symbol's previous target stays in
force; one that reduces a breach (prices moved the book over a limit, the
decision trims it) passes, so the checks never stand in the way of
de-risking. A value equal to its bound passes (bounds are compared with a
relative tolerance of 1e-12 for the rounding of the weight sums). A target
that stays refused is a new decision again at the next bar and is checked
again (room may have been freed); the refusals of one requested target at
consecutive bars are one rejection, recorded at its first bar with the
number of bars it was held back.

``GreekLimits`` bound the options book's net dollar Greeks the same way
(Book A's conventions: delta and gamma per 1% move of the underlying, vega
per vol point).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import polars as pl

from dualhrq.config import FINITE, POSITIVE, PositiveInt, between, check_fields, invalid
from dualhrq.errors import DataError

Limit = Annotated[float, FINITE, POSITIVE]
# the order in which a decision's measures are checked; a rejection names the first limit it breaches
LIMITS = ("max_position", "max_adv_share", "max_gross", "max_net", "max_strategy_gross", "max_concentration")
GREEK_LIMITS = ("max_delta", "max_vega", "max_gamma")
RTOL = 1e-12
REJECTIONS = {"bar": pl.Int64, "symbol": pl.Int64, "limit": pl.String, "value": pl.Float64, "bound": pl.Float64,
              "bars": pl.Int64}


@dataclass(frozen=True)
class PreTradeResult:
    """The checked (T, N) target (a rejected decision replaced by the target in force) and its rejections.

    ``rejections`` holds one row per rejected decision: ``bar`` and ``symbol`` (indices into the target),
    ``limit`` (the first one breached, in the order of ``LIMITS``), ``value`` (the measure the decision
    would have left; ``inf`` for an order on a symbol without volume history), ``bound`` and ``bars`` (the
    consecutive bars the same requested target was refused, from ``bar`` on).
    """

    target: np.ndarray
    rejections: pl.DataFrame

    @classmethod
    def unchecked(cls, target: np.ndarray) -> PreTradeResult:
        """``target`` as it is, with no rejections (no limits were set)."""
        return cls(target=target, rejections=pl.DataFrame(schema=REJECTIONS))

    @property
    def counts(self) -> dict[str, int]:
        """Rejected decisions per limit, every limit named (zero where none)."""
        found = dict(self.rejections.group_by("limit").len().iter_rows())
        return {name: int(found.get(name, 0)) for name in LIMITS}

    def frame(self, ts: np.ndarray, symbols: tuple[str, ...] | list[str]) -> pl.DataFrame:
        """The rejections with the grid's bar times and symbol names: ts, symbol, limit, value, bound, bars."""
        r = self.rejections
        return pl.DataFrame({
            "ts": pl.Series(np.asarray(ts)[r["bar"].to_numpy()], dtype=pl.Datetime("us")),
            "symbol": pl.Series(np.asarray(symbols, dtype=object)[r["symbol"].to_numpy()], dtype=pl.String),
            "limit": r["limit"], "value": r["value"], "bound": r["bound"], "bars": r["bars"],
        })


def _last_seen(values: np.ndarray) -> np.ndarray:
    """Each column's last finite value at or before each row (NaN before the first)."""
    idx = np.where(np.isfinite(values), np.arange(values.shape[0])[:, None], -1)
    np.maximum.accumulate(idx, axis=0, out=idx)
    out = values[np.maximum(idx, 0), np.arange(values.shape[1])]
    return np.where(idx >= 0, out, np.nan)


def average_daily_volume(day: np.ndarray, volume: np.ndarray, sessions: int) -> np.ndarray:
    """(T, N) average daily volume: the mean of a symbol's daily volumes over the ``sessions`` sessions before
    the bar's own, leaving out sessions in which it had no bar.

    Point in time: a bar's value uses whole sessions before its own only. NaN
    where the symbol had no bar in those sessions (always in the first session).
    """
    _, d = np.unique(day, return_inverse=True)
    n_days = int(d.max()) + 1 if d.size else 0
    daily = np.zeros((n_days, volume.shape[1]))
    listed = np.zeros((n_days, volume.shape[1]))
    np.add.at(daily, d, np.nan_to_num(volume))
    np.add.at(listed, d, np.isfinite(volume).astype(float))
    total = np.vstack([np.zeros((1, volume.shape[1])), np.cumsum(daily, axis=0)])  # sums of days before k
    count = np.vstack([np.zeros((1, volume.shape[1])), np.cumsum(listed > 0, axis=0)])
    start = np.maximum(np.arange(n_days) - sessions, 0)
    days_in = count[:-1] - count[start]
    with np.errstate(invalid="ignore", divide="ignore"):
        adv = np.where(days_in > 0, (total[:-1] - total[start]) / days_in, np.nan)
    return adv[d]


@dataclass(frozen=True)
class PreTradeLimits:
    """Position, book and liquidity limits on every new decision (``backtest.limits``); None = no such limit."""

    max_position: Limit | None = None  # |shares x mid| / capital, per symbol
    max_gross: Limit | None = None  # sum |w|
    max_net: Limit | None = None  # |sum w|
    max_concentration: Annotated[float, between(0, 1, lo_open=True)] | None = None  # max |w_i| / sum |w|
    min_names: PositiveInt = 5  # the concentration limit applies to books of at least this many names
    max_adv_share: Limit | None = None  # |order shares| / average daily volume
    adv_days: PositiveInt = 20  # sessions in the average daily volume
    max_strategy_gross: Mapping[str, float] | None = None  # strategy -> its own gross limit
    strategy: str = "book_b"  # the strategy whose targets ``check`` is given

    def __post_init__(self) -> None:
        check_fields(self)
        if self.max_concentration is not None and self.max_concentration * self.min_names < 1:
            raise invalid("max_concentration", self.max_concentration,
                          f">= 1 / min_names ({1 / self.min_names:g}): a book of min_names names always holds "
                          "one of at least that share", "raise it or lower min_names")
        if self.max_strategy_gross is not None:
            if not isinstance(self.max_strategy_gross, Mapping):
                raise invalid("max_strategy_gross", self.max_strategy_gross, "a mapping strategy -> gross limit")
            limits = {str(k): v for k, v in self.max_strategy_gross.items()}
            for name, bound in limits.items():
                if isinstance(bound, bool) or not isinstance(bound, int | float) or not 0 < bound < float("inf"):
                    raise invalid(f"max_strategy_gross.{name}", bound, "a finite positive number")
            if self.strategy not in limits:
                raise invalid("max_strategy_gross", limits, f"a mapping with an entry for strategy "
                              f"{self.strategy!r}", "add one, or set strategy to the name of this book")
            object.__setattr__(self, "max_strategy_gross", {k: float(v) for k, v in limits.items()})

    def bounds(self) -> dict[str, float]:
        """The limits that are set, by name (``max_strategy_gross``: this strategy's)."""
        values = {name: getattr(self, name) for name in LIMITS if name != "max_strategy_gross"}
        if self.max_strategy_gross is not None:
            values["max_strategy_gross"] = self.max_strategy_gross[self.strategy]
        return {name: float(values[name]) for name in LIMITS if values.get(name) is not None}

    def check(self, target: np.ndarray, mid: np.ndarray, day: np.ndarray, volume: np.ndarray,
              capital: float) -> PreTradeResult:
        """Walk the bars and check each new decision of ``target`` (T, N shares; NaN = none) in symbol order.

        ``mid`` (T, N) values the book, ``day`` (T,) numbers the sessions (non-decreasing) and ``volume``
        (T, N) gives the average daily volume of the sessions before each bar's.
        """
        target, mid, volume = (np.asarray(a, dtype=float) for a in (target, mid, volume))
        day = np.asarray(day)
        self._check_inputs(target, mid, day, volume, capital)
        bounds = self.bounds()
        T, N = target.shape
        mark = _last_seen(np.where(mid > 0, mid, np.nan))
        adv = average_daily_volume(day, volume, self.adv_days) if "max_adv_share" in bounds else None
        out = target.copy()
        held = np.zeros(N)  # the targets in force
        rows: list[list] = []
        refused: dict[int, int] = {}  # symbol -> its row, while its request stays refused bar after bar
        for t in range(T):
            new = np.flatnonzero(np.isfinite(target[t]) & (target[t] != held))
            if not new.size:
                continue
            unpriced = new[(target[t, new] != 0) & ~np.isfinite(mark[t, new])]
            if unpriced.size:
                raise DataError(f"target: a decision on symbol {int(unpriced[0])} at bar {t} comes before its "
                                "first quote, so the pre-trade checks cannot value it. Fix: decide on quoted bars.")
            w = np.where(held != 0, held * mark[t], 0.0) / capital
            book = (float(np.abs(w).sum()), float(w.sum()))  # gross, net
            for j in new:
                w_new = target[t, j] * mark[t, j] / capital if target[t, j] != 0 else 0.0
                order = abs(target[t, j] - held[j])
                breach = self._breach(bounds, w, book, j, w_new, order, adv[t, j] if adv is not None else np.nan)
                if breach is None:
                    book = (book[0] - abs(w[j]) + abs(w_new), book[1] - w[j] + w_new)
                    held[j], w[j] = target[t, j], w_new
                    continue
                out[t, j] = held[j]
                row = refused.get(j)
                if row is not None and rows[row][0] + rows[row][5] == t and target[t - 1, j] == target[t, j]:
                    rows[row][5] += 1
                else:
                    refused[j] = len(rows)
                    rows.append([t, int(j), *breach, 1])
        return PreTradeResult(target=out, rejections=pl.DataFrame(rows, schema=REJECTIONS, orient="row"))

    def _breach(self, bounds: dict[str, float], w: np.ndarray, book: tuple[float, float], j: int, w_new: float,
                order: float, adv: float) -> tuple[str, float, float] | None:
        """The first limit the decision ``w[j] -> w_new`` breaches on the book ``w`` (whose gross and net are
        ``book``), with the measure after it and the bound."""
        gross, net = book
        gross_after = gross - abs(w[j]) + abs(w_new)
        measures = {
            "max_position": (abs(w[j]), abs(w_new)),
            "max_adv_share": (0.0, order / adv if adv > 0 else float("inf")),
            "max_gross": (gross, gross_after),
            "max_net": (abs(net), abs(net - w[j] + w_new)),
            "max_strategy_gross": (gross, gross_after),
        }
        if "max_concentration" in bounds:
            after = w.copy()
            after[j] = w_new
            measures["max_concentration"] = (_concentration(w, self.min_names), _concentration(after, self.min_names))
        for name, bound in bounds.items():
            before, value = measures[name]
            if value > bound * (1 + RTOL) and value > before:
                return name, float(value), bound
        return None

    def _check_inputs(self, target: np.ndarray, mid: np.ndarray, day: np.ndarray, volume: np.ndarray,
                      capital: float) -> None:
        if target.ndim != 2:
            raise DataError(f"target must be a (bars, symbols) array, got shape {target.shape}.")
        for name, array in (("mid", mid), ("volume", volume)):
            if array.shape != target.shape:
                raise DataError(f"{name} must have the target's shape {target.shape}, got {array.shape}.")
        if day.shape != target.shape[:1] or (day.size and np.any(np.diff(day) < 0)):
            raise DataError(f"day must be a non-decreasing session number per bar, shape {target.shape[:1]}.")
        if not (isinstance(capital, int | float) and 0 < capital < float("inf")):
            raise invalid("capital", capital, "a finite positive number")
        if np.isinf(target).any():
            raise DataError("target holds infinite shares. Fix: NaN for no decision, finite shares otherwise.")


def _concentration(w: np.ndarray, min_names: int) -> float:
    """Largest |w_i| over gross, or 0 for a book of fewer than ``min_names`` names."""
    a = np.abs(w)
    return float(a.max() / a.sum()) if np.count_nonzero(a) >= min_names else 0.0


@dataclass(frozen=True)
class GreekLimits:
    """Limits on the options book's net dollar Greeks (Book A); None = no such limit."""

    max_delta: Limit | None = None  # |net delta| incl. the hedge, $ per 1% move of the underlyings
    max_vega: Limit | None = None  # |net vega|, $ per vol point (0.01)
    max_gamma: Limit | None = None  # |net dollar gamma|, $ gamma P&L of a 1% move, Gamma (0.01 S)^2 / 2
    multiplier: PositiveInt = 100  # shares per contract

    def __post_init__(self) -> None:
        check_fields(self)

    def exposures(self, legs: pl.DataFrame) -> dict[str, float]:
        """The book's net dollar Greeks: ``delta``, ``vega``, ``gamma`` in the units of the limits.

        ``legs``: one row per option leg with ``symbol``, ``contracts`` (signed), per-share BSM ``delta``,
        ``gamma``, ``vega`` (per unit of vol), the ``underlying`` price, and the symbol's ``hedge`` (shares of
        the underlying, the same on every leg of a symbol).
        """
        needed = ("symbol", "contracts", "delta", "gamma", "vega", "underlying", "hedge")
        missing = [c for c in needed if c not in legs.columns]
        if missing:
            raise DataError(f"legs lack columns {missing}; the Greek limits need {list(needed)}.")
        numbers = legs.select(pl.col(needed[1:]).cast(pl.Float64))
        if not all(np.isfinite(numbers[c].to_numpy()).all() for c in numbers.columns):
            raise DataError("legs: NaN or infinite values. Fix: price every leg before checking its Greeks.")
        per_symbol = legs.group_by("symbol").agg(pl.col("hedge").n_unique().alias("n"),
                                                 pl.col("hedge").first(), pl.col("underlying").first())
        if (per_symbol["n"] > 1).any():
            raise DataError("legs: a symbol's legs carry different hedges. Fix: one hedge per symbol.")
        q = legs["contracts"].to_numpy() * self.multiplier
        spot = legs["underlying"].to_numpy()
        hedge_delta = float((per_symbol["hedge"] * per_symbol["underlying"]).sum()) * 0.01
        return {
            "delta": float(np.sum(q * legs["delta"].to_numpy() * spot)) * 0.01 + hedge_delta,
            "vega": float(np.sum(q * legs["vega"].to_numpy())) * 0.01,
            "gamma": float(np.sum(0.5 * q * legs["gamma"].to_numpy() * (0.01 * spot) ** 2)),
        }

    def check_greeks(self, legs: pl.DataFrame) -> pl.DataFrame:
        """One row per breached limit (limit, value, bound); empty when the book is within every limit."""
        exposure = self.exposures(legs)
        rows = [(name, abs(exposure[name.removeprefix("max_")]), float(getattr(self, name)))
                for name in GREEK_LIMITS if getattr(self, name) is not None]
        return pl.DataFrame([r for r in rows if r[1] > r[2] * (1 + RTOL)],
                            schema={"limit": pl.String, "value": pl.Float64, "bound": pl.Float64}, orient="row")
