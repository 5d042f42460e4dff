"""Book A, the options book: delta-hedged ATM straddles or strangles with Greek limits and P&L attribution.

Every day and symbol the book holds one structure on the option chain (the
intraday data contract's chain: date, symbol, expiry, tau, strike, right,
underlying, rate, iv, price): a straddle (call and put at the strike nearest
the underlying) or a strangle (call and put at the strikes nearest
``underlying * (1 +/- width)``), in the first expiry at least ``min_tau_days``
out, rolled when fewer than ``roll_tau_days`` remain (the synthetic chain
lists expiries at least a week out, so the roll must come before that). Held
contracts are marked at their quote, or where the day's chain does not list
their strike, by Black-Scholes-Merton at the implied volatility interpolated
along that expiry's smile in log-moneyness (or read off the true raw SVI
surface where it is given, as the synthetic market provides). The size is the largest
whole number of contracts within the vega and dollar-gamma limits; the
underlying hedge makes the book delta-neutral at every close.

The day's P&L of a position is attributed with its Black-Scholes-Merton
Greeks at the previous close (Hull, "Options, Futures and Other
Derivatives", ch. 19): delta ``D dS`` (options and hedge together), gamma
``G dS^2 / 2``, vega ``V d(sigma)`` (the contract's own implied volatility),
theta ``Theta d(tau)``, and the residual, which holds every other term of
the expansion: the cross and second-order terms vanna ``dS d(sigma)``, volga
``d(sigma)^2``, charm ``dS d(tau)`` and veta ``d(sigma) d(tau)``, the
third-order ones (speed ``dS^3``, ...) and rho times the change of the rate;
on a chain priced by Black-Scholes from a known surface it stays small. A
rebalance's costs (commissions and the hedge's trading cost) are booked in the
row of the day it trades; a symbol's first row (the first day's, or the day
it opens later) holds the structure as opened, no P&L, and the opening costs.

With desk limits (``greek_limits``, :class:`dualhrq.risk.limits.GreekLimits`
on |net delta| with the hedge, |net vega| and |net dollar gamma| of the whole
book) every rebalance is checked before it trades, at the day's marks. A
proposed book within every limit (a value equal to its bound passes, up to a
relative 1e-12 for rounding) trades whole. Otherwise the symbols' decisions
(a symbol's new legs and hedge, where they differ from what it holds) are
taken back one at a time, in symbol order, while the book breaches a limit:
a decision whose taking back lowers a breached measure (its legs push that
total over, or further over, its bound) is refused and recorded (date,
symbol, the first such limit, the measure the book had with the decision,
the bound); once the book is within every limit the remaining decisions
trade. A decision that only lowers the breached measures (a shrink or a
re-hedge when the market moved the book over a limit) is never refused. A
refused symbol trades nothing: it keeps last night's legs and hedge, unless
the refused rebalance was rolling them, in which case the structure and its
hedge are closed (a book never holds a structure past its roll). It is a new
decision again the next day.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Annotated

import numpy as np
import polars as pl

from dualhrq.config import Positive, PositiveInt, check_fields, invalid, one_of
from dualhrq.errors import DataError
from dualhrq.primitives.bsm import bsm_greeks, bsm_price
from dualhrq.risk.limits import GREEK_LIMITS, RTOL, GreekLimits

CHAIN_COLUMNS = ("date", "symbol", "expiry", "tau", "strike", "right", "underlying", "rate", "iv", "price")
KEY = ["symbol", "expiry", "strike", "right"]
VALUES = ["underlying", "tau", "rate", "iv", "price", "delta", "gamma", "vega", "theta"]


def with_greeks(frame: pl.DataFrame) -> pl.DataFrame:
    """Add delta, gamma, vega (per unit vol) and theta (per year of calendar time) from the row's iv."""
    g = bsm_greeks(frame["underlying"].to_numpy(), frame["strike"].to_numpy(), frame["tau"].to_numpy(),
                   frame["rate"].to_numpy(), frame["iv"].to_numpy(), (frame["right"] == "C").to_numpy())
    return frame.with_columns(**{k: pl.Series(g[k]) for k in ("delta", "gamma", "vega", "theta")})


@dataclass(frozen=True)
class OptionsResult:
    """Book A's replay under its desk limits: the attribution frame of :meth:`OptionsBook.run` and the
    refused rebalances, one row per day and symbol: ``date, symbol, limit`` (the first one its legs push
    over, in the order of ``GREEK_LIMITS``), ``value`` (that measure of the book with them) and ``bound``."""

    attribution: pl.DataFrame
    rejections: pl.DataFrame

    @property
    def counts(self) -> dict[str, int]:
        """Refused rebalances per limit, every limit named (zero where none)."""
        found = dict(self.rejections.group_by("limit").len().iter_rows())
        return {name: int(found.get(name, 0)) for name in GREEK_LIMITS}


@dataclass(frozen=True)
class OptionsBook:
    """Structure, expiry choice, Greek limits and costs of Book A (``options.book`` of the replay config)."""

    structure: Annotated[str, one_of(("straddle", "strangle"))] = "straddle"
    side: Annotated[str, one_of(("long", "short"))] = "long"
    width: float = 0.05
    min_tau_days: PositiveInt = 20
    roll_tau_days: int = 12
    vega_limit: Positive = 500.0  # $ per vol point (0.01), per symbol
    gamma_limit: Positive = 2_000.0  # $ gamma P&L of a 1% move, Gamma (0.01 S)^2 / 2, per symbol
    multiplier: PositiveInt = 100
    capital: Positive = 1_000_000.0
    commission_per_contract: float = 0.65
    hedge_cost_bps: float = 1.0
    greek_limits: GreekLimits | None = None  # desk limits on the whole book's net Greeks, checked pre-trade

    def __post_init__(self) -> None:
        check_fields(self)
        if self.greek_limits is not None and not isinstance(self.greek_limits, GreekLimits):
            raise invalid("greek_limits", self.greek_limits, "GreekLimits settings or null",
                          "give the block _target_: dualhrq.risk.limits.GreekLimits")
        if self.greek_limits is not None and self.greek_limits.multiplier != self.multiplier:
            raise invalid("greek_limits.multiplier", self.greek_limits.multiplier,
                          f"the book's multiplier ({self.multiplier})")
        if not 0 < self.roll_tau_days < self.min_tau_days:
            raise invalid("roll_tau_days", self.roll_tau_days, f"> 0 and below min_tau_days ({self.min_tau_days})")
        if self.structure == "strangle" and not 0 < self.width < 1:
            raise invalid("width", self.width, "in (0, 1) for a strangle")

    def _legs(self, day: pl.DataFrame) -> pl.DataFrame:
        """The two legs per symbol for a new position, from one day's chain."""
        eligible = day.filter(pl.col("tau") * 365.0 >= self.min_tau_days)
        expiry = eligible.group_by("symbol").agg(pl.col("expiry").min())
        legs = eligible.join(expiry, on=["symbol", "expiry"])
        up, down = (1 + self.width, 1 - self.width) if self.structure == "strangle" else (1.0, 1.0)
        aim = pl.when(pl.col("right") == "C").then(pl.col("underlying") * up).otherwise(pl.col("underlying") * down)
        return (legs.with_columns(distance=(pl.col("strike") - aim).abs())
                .sort("symbol", "right", "distance", "strike")
                .group_by("symbol", "right", maintain_order=True).first()
                .select("symbol", "expiry", "strike", "right"))


    def _size(self, legs: pl.DataFrame) -> pl.DataFrame:
        """Largest whole number of structures per symbol within the vega and dollar-gamma limits."""
        per = legs.group_by("symbol").agg(
            vega_pt=(pl.col("vega") * 0.01).sum() * self.multiplier,
            gamma_1pct=(0.5 * pl.col("gamma") * pl.col("underlying") ** 2 * 1e-4).sum() * self.multiplier)
        return per.with_columns(max_contracts=pl.min_horizontal(
            (self.vega_limit / pl.col("vega_pt")).floor(), (self.gamma_limit / pl.col("gamma_1pct")).floor()))

    def _mark(self, book: pl.DataFrame, quotes: pl.DataFrame, today, surface: pl.DataFrame | None) -> pl.DataFrame:
        """The book's legs valued on today's chain (see the module docstring)."""
        listed = book.join(quotes.select(*KEY, *VALUES), on=KEY, how="left")
        missing = listed.filter(pl.col("price").is_null())
        if missing.height == 0:
            return listed
        rows = []
        for (symbol, expiry), legs in missing.group_by("symbol", "expiry"):
            smile = quotes.filter((pl.col("symbol") == symbol) & (pl.col("expiry") == expiry)).sort("strike")
            if smile.height == 0:
                raise DataError(f"option chain on {today}: no quotes for {symbol} expiring {expiry}, which the "
                                "book holds. Fix: raise options.book.roll_tau_days so positions roll while "
                                "their expiry is still listed.")
            spot, tau = smile["underlying"][0], smile["tau"][0]
            svi = None if surface is None else surface.filter(
                (pl.col("date") == today) & (pl.col("symbol") == symbol) & (pl.col("expiry") == expiry))
            if svi is not None and svi.height:
                p = svi.row(0, named=True)
                k = np.log(legs["strike"].to_numpy() / p["forward"]) - p["m"]
                w = p["a"] + p["b"] * (p["rho"] * k + np.sqrt(k * k + p["sigma"] ** 2))
                iv = np.sqrt(w / tau)
            else:
                iv = np.interp(np.log(legs["strike"].to_numpy() / spot), np.log(smile["strike"].to_numpy() / spot),
                               smile["iv"].to_numpy())
            rows.append(legs.select(*KEY, "contracts").with_columns(
                underlying=pl.lit(spot), tau=pl.lit(tau), rate=pl.lit(smile["rate"][0]),
                iv=pl.Series(iv)))
        marked = pl.concat(rows)
        marked = marked.with_columns(price=pl.Series(bsm_price(
            marked["underlying"].to_numpy(), marked["strike"].to_numpy(), marked["tau"].to_numpy(),
            marked["rate"].to_numpy(), marked["iv"].to_numpy(), (marked["right"] == "C").to_numpy())))
        return pl.concat([listed.filter(pl.col("price").is_not_null()), with_greeks(marked).select(listed.columns)])

    def _kept(self, marked: pl.DataFrame) -> pl.DataFrame:
        """The held legs that are not due to roll."""
        return marked.filter((pl.col("tau") * 365.0 >= self.roll_tau_days) & (pl.len().over("symbol") == 2))

    def _rebalance(self, quotes: pl.DataFrame, marked: pl.DataFrame) -> pl.DataFrame:
        """Tonight's proposed legs after rolls and the per-symbol limits, valued at today's close."""
        sign = 1.0 if self.side == "long" else -1.0
        keep = self._kept(marked)
        new = self._legs(quotes.filter(~pl.col("symbol").is_in(keep["symbol"].unique().to_list())))
        new = new.join(quotes.select(*KEY, *VALUES), on=KEY).with_columns(contracts=pl.lit(float("inf")))
        legs = pl.concat([keep.with_columns(pl.col("contracts").abs()), new.select(keep.columns)])
        cap = self._size(legs).select("symbol", "max_contracts")
        return (legs.join(cap, on="symbol")
                .with_columns(contracts=sign * pl.min_horizontal("contracts", "max_contracts"))
                .drop("max_contracts"))

    def _pretrade(self, marked: pl.DataFrame, hedge: pl.DataFrame, legs: pl.DataFrame,
                  new_hedge: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, list[tuple]]:
        """Tonight's legs and hedge after the desk's Greek limits, and the refused symbols' ``(symbol, limit,
        value, bound)`` (see the module docstring)."""
        limits = self.greek_limits
        book = legs.join(new_hedge, on="symbol")
        if limits is None or limits.check_greeks(book).is_empty():
            return legs, new_hedge, []
        held = marked.join(hedge, on="symbol", how="left").select(book.columns)
        rolling = set(marked["symbol"]) - set(self._kept(marked)["symbol"])
        refused = []
        for symbol in sorted(set(book["symbol"]) | set(held["symbol"])):
            breaches = limits.check_greeks(book)
            if breaches.is_empty():
                break
            mine = pl.col("symbol") == symbol
            kept = held.clear() if symbol in rolling else held.filter(mine)  # a refused roll closes
            if _position(kept).equals(_position(book.filter(mine))):
                continue  # nothing to trade
            back = pl.concat([book.filter(~mine), kept])
            was = limits.exposures(back)
            pushed = [r for r in breaches.iter_rows() if abs(was[r[0].removeprefix("max_")]) * (1 + RTOL) < r[1]]
            if pushed:
                refused.append((symbol, *pushed[0]))
                book = back
        return book.drop("hedge"), book.group_by("symbol", maintain_order=True).agg(pl.col("hedge").first()), refused

    def run(self, chain: pl.DataFrame, surface: pl.DataFrame | None = None) -> pl.DataFrame:
        """Per (date, symbol): contracts, hedge, Greeks of the book, and the day's P&L attributed.

        ``surface`` (raw SVI parameters per date, symbol, expiry with the
        forward: ``a, b, rho, m, sigma, forward``), where known, marks
        unlisted strikes exactly instead of by interpolation.
        """
        return self.run_checked(chain, surface).attribution

    def run_checked(self, chain: pl.DataFrame, surface: pl.DataFrame | None = None) -> OptionsResult:
        """:meth:`run`'s attribution and the rebalances ``greek_limits`` refused (none without limits)."""
        rows, refused = [], []
        for today, row, _, _, rejected in self._replay(chain, surface):
            if row is not None:
                rows.append(row)
            refused += [(today, *r) for r in rejected]
        if len(rows) < 2:
            raise DataError("option chain: Book A needs at least two days of quotes.")
        schema = {"date": chain.schema["date"], "symbol": pl.String, "limit": pl.String, "value": pl.Float64,
                  "bound": pl.Float64}
        return OptionsResult(attribution=pl.concat(rows).sort("date", "symbol"),
                          rejections=pl.DataFrame(refused, schema=schema, orient="row"))

    def holdings(self, chain: pl.DataFrame, surface: pl.DataFrame | None = None,
                 day: date | None = None) -> tuple[pl.DataFrame, dict[str, float]]:
        """The legs held at the close of ``day`` (the chain's last day by default) with their marks, and the
        underlying hedge (shares per symbol), as :meth:`run` holds them.

        Before the last day that is the book after the day's rebalance; on the
        last day, which :meth:`run` does not trade, last night's book at the
        day's marks. Legs: ``symbol, expiry, strike, right, contracts``
        (signed), the marks ``underlying, tau, rate, iv, price, delta, gamma,
        vega, theta`` and, with a ``surface``, the raw SVI slice of the leg's
        expiry on that day ``a, b, rho, m, sigma`` (what
        :func:`dualhrq.risk.stress.option_stress` revalues).
        """
        held = None
        for today, _, legs, hedge, _ in self._replay(chain, surface):
            held = (today, legs, hedge)
            if today == day:
                break
        if day is not None and held[0] != day:
            dates = chain["date"]
            raise DataError(f"day={day} is not a date of the option chain, which covers {dates.min()}.."
                            f"{dates.max()}. Fix: choose a date it quotes.")
        today, legs, hedge = held
        if surface is not None:
            svi = surface.filter(pl.col("date") == today).select("symbol", "expiry", "a", "b", "rho", "m", "sigma")
            legs = legs.join(svi, on=["symbol", "expiry"], how="left")
        return legs.sort(KEY), {s: float(h) for s, h in hedge.iter_rows()}

    def _replay(self, chain: pl.DataFrame, surface: pl.DataFrame | None) -> Iterator[tuple]:
        """The book day by day: ``(date, the day's P&L row or None, legs held at the close with their marks,
        hedge, the symbols whose rebalance the desk's limits refused)``."""
        missing = [c for c in CHAIN_COLUMNS if c not in chain.columns]
        if missing:
            raise DataError(f"option chain lacks columns {missing}; Book A needs {list(CHAIN_COLUMNS)}.")
        chain = with_greeks(chain.select(CHAIN_COLUMNS))
        m = float(self.multiplier)
        book = pl.DataFrame(schema={**{k: chain.schema[k] for k in KEY}, "contracts": pl.Float64})
        hedge = pl.DataFrame(schema={"symbol": pl.String, "hedge": pl.Float64})
        prev = None
        days = chain["date"].unique().sort().to_list()
        for d, today in enumerate(days):
            quotes = chain.filter(pl.col("date") == today)
            marked = self._mark(book, quotes, today, surface)
            held = marked
            row = self._attribute(prev, marked, today) if prev is not None and book.height else None
            costs = pl.DataFrame(schema={"symbol": pl.String, "costs": pl.Float64})
            refused = []
            if d < len(days) - 1:
                legs = self._rebalance(quotes, marked)
                new_hedge = legs.group_by("symbol").agg(hedge=(-(pl.col("contracts") * pl.col("delta")).sum() * m)
                                                        .round(0))
                legs, new_hedge, refused = self._pretrade(marked, hedge, legs, new_hedge)
                spot = quotes.group_by("symbol").agg(spot=pl.col("underlying").first())
                traded = (legs.select(*KEY, "contracts").join(book, on=KEY, how="full", coalesce=True, suffix="_old")
                          .with_columns(pl.col("contracts", "contracts_old").fill_null(0.0))
                          .group_by("symbol").agg(traded=(pl.col("contracts") - pl.col("contracts_old")).abs().sum()))
                costs = (new_hedge.join(hedge, on="symbol", how="full", coalesce=True, suffix="_old")
                         .join(traded, on="symbol", how="full", coalesce=True).join(spot, on="symbol", how="left")
                         .with_columns(pl.col("hedge", "hedge_old", "traded", "spot").fill_null(0.0))
                         .select("symbol", costs=pl.col("traded") * self.commission_per_contract
                                 + (pl.col("hedge") - pl.col("hedge_old")).abs() * pl.col("spot")
                                 * self.hedge_cost_bps * 1e-4))
                book, hedge, held = legs.select(*KEY, "contracts"), new_hedge, legs
                prev = {"legs": legs, "hedge": hedge}
                # a symbol opened today (the first day, or after its rebalance was refused): no P&L yet, the
                # structure as opened and what opening it cost
                opened = self._attribute(prev, legs, today)
                row = opened if row is None else pl.concat([row, opened.join(row, on="symbol", how="anti")])
            if row is not None:  # a rebalance's costs are booked on the day it trades
                row = (row.drop("costs").join(costs, on="symbol", how="left")
                       .with_columns(pl.col("costs").fill_null(0.0))
                       .with_columns(net=pl.col("total") - pl.col("costs")).select(row.columns))
            yield today, row, held, hedge, refused

    def _attribute(self, prev: dict, marked: pl.DataFrame, today) -> pl.DataFrame:
        """Last night's book through today's marks: total P&L and its Greek terms, per symbol."""
        now = prev["legs"].join(marked.select(*KEY, *(pl.col(c).alias(f"{c}_now") for c in VALUES)), on=KEY)
        q = pl.col("contracts") * float(self.multiplier)
        ds = pl.col("underlying_now") - pl.col("underlying")
        per_leg = now.select(
            "symbol", option_pnl=q * (pl.col("price_now") - pl.col("price")), delta=q * pl.col("delta"),
            delta_pnl=q * pl.col("delta") * ds, gamma_pnl=0.5 * q * pl.col("gamma") * ds**2,
            vega_pnl=q * pl.col("vega") * (pl.col("iv_now") - pl.col("iv")),
            theta_pnl=q * pl.col("theta") * (pl.col("tau") - pl.col("tau_now")),
            gamma=q * pl.col("gamma"), vega=q * pl.col("vega"), theta=q * pl.col("theta"),
            contracts=pl.col("contracts").abs(), ds=ds)
        out = (per_leg.group_by("symbol").agg(pl.exclude("ds", "contracts").sum(), pl.col("ds").first(),
                                              pl.col("contracts").max())
               .join(prev["hedge"], on="symbol").with_columns(costs=pl.lit(0.0))
               .with_columns(hedge_pnl=pl.col("hedge") * pl.col("ds"), net_delta=pl.col("delta") + pl.col("hedge")))
        return out.with_columns(
            date=pl.lit(today), delta_pnl=pl.col("delta_pnl") + pl.col("hedge_pnl"),
            total=pl.col("option_pnl") + pl.col("hedge_pnl"),
        ).with_columns(
            residual=pl.col("total") - pl.sum_horizontal("delta_pnl", "gamma_pnl", "vega_pnl", "theta_pnl"),
            net=pl.col("total") - pl.col("costs"),
        ).select("date", "symbol", "contracts", "hedge", "net_delta", "gamma", "vega", "theta", "total",
                 "delta_pnl", "gamma_pnl", "vega_pnl", "theta_pnl", "residual", "costs", "net")


def _position(legs: pl.DataFrame) -> pl.DataFrame:
    """What a symbol holds: its legs' contracts and its hedge, in a fixed order."""
    return legs.select(*KEY, "contracts", "hedge").sort(KEY)

