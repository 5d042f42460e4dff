"""Book A, the options book: delta-hedged ATM straddles or strangles with Greek limits and P&L attribution.

Every day and symbol the book holds one structure on the option chain (the
intraday data contract's chain: date, symbol, expiry, tau, strike, right,
underlying, rate, iv, price): a straddle (call and put at the strike nearest
the underlying) or a strangle (call and put at the strikes nearest
``underlying * (1 +/- width)``), in the first expiry at least ``min_tau_days``
out, rolled when fewer than ``roll_tau_days`` remain. The size is the largest
whole number of contracts within the vega and dollar-gamma limits; the
underlying hedge makes the book delta-neutral at every close.

The day's P&L of a position is attributed with its Black-Scholes-Merton
Greeks at the previous close (Hull, "Options, Futures and Other
Derivatives", ch. 19): delta ``D dS`` (options and hedge together), gamma
``G dS^2 / 2``, vega ``V d(sigma)`` (the contract's own implied volatility),
theta ``Theta d(tau)``, and the residual, which holds the higher-order terms
(vanna, volga, speed) and the rate; on a chain priced by Black-Scholes from
a known surface it stays small.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.stats import norm

from dualhrq.errors import ConfigError, DataError, positive_int

CHAIN_COLUMNS = ("date", "symbol", "expiry", "tau", "strike", "right", "underlying", "rate", "iv", "price")


def bsm(spot: np.ndarray, strike: np.ndarray, tau: np.ndarray, rate: np.ndarray, vol: np.ndarray,
        call: np.ndarray) -> dict[str, np.ndarray]:
    """Black-Scholes-Merton price, delta, gamma, vega (per unit vol) and theta (per year, as calendar time runs)."""
    spot, strike, tau, rate, vol, call = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in
                                                                (spot, strike, tau, rate, vol)), np.asarray(call))
    sq = vol * np.sqrt(tau)
    d1 = (np.log(spot / strike) + (rate + 0.5 * vol * vol) * tau) / sq
    d2 = d1 - sq
    disc = strike * np.exp(-rate * tau)
    pdf = norm.pdf(d1)
    call_price = spot * norm.cdf(d1) - disc * norm.cdf(d2)
    price = np.where(call, call_price, call_price - spot + disc)  # put-call parity
    delta = np.where(call, norm.cdf(d1), norm.cdf(d1) - 1.0)
    gamma = pdf / (spot * sq)
    vega = spot * pdf * np.sqrt(tau)
    theta_call = -spot * pdf * vol / (2 * np.sqrt(tau)) - rate * disc * norm.cdf(d2)
    theta = np.where(call, theta_call, theta_call + rate * disc)
    return {"price": price, "delta": delta, "gamma": gamma, "vega": vega, "theta": theta}


@dataclass(frozen=True)
class OptionsBook:
    """Structure, expiry choice, Greek limits and costs of Book A (``books.options``)."""

    structure: str = "straddle"
    side: str = "long"
    width: float = 0.05
    min_tau_days: int = 20
    roll_tau_days: int = 5
    vega_limit: float = 5_000.0  # $ per vol point (0.01), per symbol
    gamma_limit: float = 20_000.0  # $ P&L for a 1% move from gamma (Gamma S^2 / 2 * 0.01^2 * 1e4), per symbol
    multiplier: int = 100
    capital: float = 1_000_000.0
    commission_per_contract: float = 0.65
    hedge_cost_bps: float = 1.0

    def __post_init__(self) -> None:
        if self.structure not in ("straddle", "strangle"):
            raise ConfigError(f"books.options.structure={self.structure!r}; choose straddle or strangle.")
        if self.side not in ("long", "short"):
            raise ConfigError(f"books.options.side={self.side!r}; choose long or short.")
        positive_int(self.min_tau_days, "books.options.min_tau_days")
        positive_int(self.multiplier, "books.options.multiplier")
        if not 0 <= self.roll_tau_days < self.min_tau_days:
            raise ConfigError("books.options.roll_tau_days must be >= 0 and below min_tau_days, got "
                              f"{self.roll_tau_days} (min_tau_days={self.min_tau_days}).")
        for name in ("vega_limit", "gamma_limit", "capital"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"books.options.{name} must be > 0, got {getattr(self, name)!r}.")
        if self.structure == "strangle" and not 0 < self.width < 1:
            raise ConfigError(f"books.options.width={self.width} must be in (0, 1) for a strangle.")

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

    def _rebalance(self, quotes: pl.DataFrame, held: pl.DataFrame) -> pl.DataFrame:
        """Tomorrow's legs (symbol, expiry, strike, right, contracts) after rolls and the Greek limits."""
        key = ["symbol", "expiry", "strike", "right"]
        keep = held.join(quotes.select(*key, "tau"), on=key).filter(pl.col("tau") * 365.0 >= self.roll_tau_days)
        keep = keep.filter(pl.len().over("symbol") == 2).select(*key, "contracts")
        sign = 1.0 if self.side == "long" else -1.0
        new = (self._legs(quotes.filter(~pl.col("symbol").is_in(keep["symbol"].unique().to_list())))
               .with_columns(contracts=pl.lit(float("inf"))))
        legs = pl.concat([keep.with_columns(pl.col("contracts").abs()), new]).join(quotes, on=key)
        cap = self._size(legs).select("symbol", "max_contracts")
        return (legs.join(cap, on="symbol")
                .with_columns(contracts=sign * pl.min_horizontal("contracts", "max_contracts"))
                .select(*key, "contracts"))

    def run(self, chain: pl.DataFrame) -> pl.DataFrame:
        """Per (date, symbol): contracts, hedge, Greeks of the book, and the day's P&L attributed."""
        missing = [c for c in CHAIN_COLUMNS if c not in chain.columns]
        if missing:
            raise DataError(f"option chain lacks columns {missing}; Book A needs {list(CHAIN_COLUMNS)}.")
        greeks = bsm(chain["underlying"].to_numpy(), chain["strike"].to_numpy(), chain["tau"].to_numpy(),
                     chain["rate"].to_numpy(), chain["iv"].to_numpy(), (chain["right"] == "C").to_numpy())
        chain = chain.with_columns(**{k: v for k, v in greeks.items() if k != "price"})
        key = ["symbol", "expiry", "strike", "right"]
        m = float(self.multiplier)
        book = pl.DataFrame(schema={**{k: chain.schema[k] for k in key}, "contracts": pl.Float64})
        hedge = pl.DataFrame(schema={"symbol": pl.String, "hedge": pl.Float64})
        prev = None
        rows = []
        days = chain["date"].unique().sort().to_list()
        for d, today in enumerate(days):
            quotes = chain.filter(pl.col("date") == today)
            if prev is not None and book.height:
                rows.append(self._attribute(prev, quotes, today))
            if d == len(days) - 1:
                break
            new_book = self._rebalance(quotes, book)
            legs = new_book.join(quotes, on=key)
            new_hedge = legs.group_by("symbol").agg(hedge=-(pl.col("contracts") * pl.col("delta")).sum() * m,
                                                    spot=pl.col("underlying").first())
            new_hedge = new_hedge.with_columns(pl.col("hedge").round(0))
            traded = (new_book.join(book, on=key, how="full", coalesce=True, suffix="_old")
                      .with_columns(pl.col("contracts", "contracts_old").fill_null(0.0))
                      .group_by("symbol").agg(contracts_traded=(pl.col("contracts") - pl.col("contracts_old"))
                                              .abs().sum()))
            costs = (new_hedge.join(hedge, on="symbol", how="left", suffix="_old")
                     .join(traded, on="symbol", how="full", coalesce=True)
                     .with_columns(pl.col("hedge", "hedge_old", "contracts_traded").fill_null(0.0))
                     .select("symbol", costs=pl.col("contracts_traded") * self.commission_per_contract
                             + (pl.col("hedge") - pl.col("hedge_old")).abs() * pl.col("spot").fill_null(0.0)
                             * self.hedge_cost_bps * 1e-4))
            book, hedge = new_book, new_hedge.select("symbol", "hedge")
            prev = {"legs": legs, "hedge": hedge, "costs": costs}
        if not rows:
            raise DataError("option chain: Book A needs at least two days of quotes.")
        return pl.concat(rows).sort("date", "symbol")

    def _attribute(self, prev: dict, quotes: pl.DataFrame, today) -> pl.DataFrame:
        """Yesterday's book through today's quotes: total P&L and its Greek terms, per symbol."""
        key = ["symbol", "expiry", "strike", "right"]
        m = float(self.multiplier)
        now = prev["legs"].join(quotes.select(*key, "price", "iv", "tau", "underlying"), on=key, how="left",
                                suffix="_now")
        if now["price_now"].null_count():
            gone = now.filter(pl.col("price_now").is_null())["symbol"].unique().to_list()
            raise DataError(f"option chain on {today}: held contracts of {gone} are not quoted. "
                            "Fix: quote every contract until its expiry.")
        q = pl.col("contracts") * m
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
               .join(prev["hedge"], on="symbol").join(prev["costs"], on="symbol", how="left")
               .with_columns(hedge_pnl=pl.col("hedge") * pl.col("ds"), net_delta=pl.col("delta") + pl.col("hedge")))
        return out.with_columns(
            date=pl.lit(today), delta_pnl=pl.col("delta_pnl") + pl.col("hedge_pnl"),
            total=pl.col("option_pnl") + pl.col("hedge_pnl"),
        ).with_columns(
            residual=pl.col("total") - pl.sum_horizontal("delta_pnl", "gamma_pnl", "vega_pnl", "theta_pnl"),
            net=pl.col("total") - pl.col("costs").fill_null(0.0),
        ).select("date", "symbol", "contracts", "hedge", "net_delta", "gamma", "vega", "theta", "total",
                 "delta_pnl", "gamma_pnl", "vega_pnl", "theta_pnl", "residual", "costs", "net")
