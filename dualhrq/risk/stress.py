"""Stress tests: today's book through historical crises, hypothetical shocks, and simulated GARCH scenarios.

Three kinds, as a risk committee asks for them (Basel Committee, "Principles
for sound stress testing practices and supervision", 2009):

* historical: the real returns of a named crisis window applied to today's
  positions (:func:`historical_stress` over :data:`SCENARIOS`);
* hypothetical: an equity fall (:func:`equity_shock`), implied volatility
  doubled (:func:`vol_shock`), every correlation set to one
  (:func:`correlation_shock`), and the options book fully revalued under a
  joint spot and volatility move next to its Greek approximation
  (:func:`option_stress`);
* simulated: h-day return scenarios from a GARCH(1,1) with Student-t
  innovations fitted to the book's returns (:func:`garch_scenarios`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated

import numpy as np
import polars as pl
from scipy import stats

from dualhrq.config import (
    FINITE,
    NON_EMPTY,
    PositiveInt,
    above,
    at_least,
    between,
    check_fields,
    check_value,
    invalid,
)
from dualhrq.data.schema import validate_bars
from dualhrq.errors import ConfigError, DataError
from dualhrq.primitives.bsm import bsm_greeks, bsm_price

__all__ = [
    "LEG_COLUMNS",
    "SCENARIOS",
    "SVI_COLUMNS",
    "CorrelationShock",
    "GarchScenarios",
    "Scenario",
    "correlation_shock",
    "equity_shock",
    "garch_scenarios",
    "historical_stress",
    "option_stress",
    "vol_shock",
]


@dataclass(frozen=True)
class Scenario:
    """A historical stress window: positions held from the close of ``start`` (the last trading day on or
    before it) to the close of ``end`` (the last trading day on or before it)."""

    name: Annotated[str, NON_EMPTY]
    start: date
    end: date
    description: str

    def __post_init__(self) -> None:
        check_fields(self)
        for field in ("start", "end"):
            if not isinstance(getattr(self, field), date):
                raise invalid(field, getattr(self, field), "a datetime.date", "write date(2020, 2, 19).")
        if not self.start < self.end:
            raise invalid("end", str(self.end), f"after start ({self.start})",
                          "a one-day event runs from the close of the day before to the close of the day.")


# Dates checked against the S&P 500 closes of the bundled index (load_sp500_index), which each description quotes:
# dotcom, volmageddon, covid and rates_2022 run from the peak close to the trough close; gfc from the last close
# before September 2008 to the trough; us_downgrade and china_deval from the close before the slide to a close
# within 0.2% of its low; flash_crash is the one session.
SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("dotcom", date(2000, 3, 24), date(2002, 10, 9),
             "Dot-com bust: S&P 500 from its 24 March 2000 peak close (1527.46) to its 9 October 2002 trough "
             "(776.76), -49%."),
    Scenario("gfc", date(2008, 9, 1), date(2009, 3, 9),
             "Global financial crisis: from the close before Lehman's month (1 September 2008 was Labor Day, so "
             "the 29 August close, 1282.83) to the 9 March 2009 trough (676.53), -47%."),
    Scenario("flash_crash", date(2010, 5, 5), date(2010, 5, 6),
             "Flash crash of 6 May 2010 (CFTC-SEC, 'Findings regarding the market events of May 6, 2010'): "
             "the session's close-to-close fall, 1165.87 to 1128.15, -3.2%."),
    Scenario("us_downgrade", date(2011, 7, 22), date(2011, 8, 10),
             "US debt-ceiling stand-off and S&P's downgrade of the US (5 August 2011): 22 July close (1345.02) "
             "to 10 August (1120.76), -17%."),
    Scenario("china_deval", date(2015, 8, 18), date(2015, 8, 25),
             "Renminbi devaluation (PBoC, 11 August 2015) and the 24 August sell-off: 18 August close "
             "(2096.92) to 25 August (1867.61), -11%."),
    Scenario("volmageddon", date(2018, 1, 26), date(2018, 2, 8),
             "Short-volatility unwind (VIX doubled on 5 February 2018, XIV terminated): 26 January peak close "
             "(2872.87) to 8 February (2581.00), -10%."),
    Scenario("covid", date(2020, 2, 19), date(2020, 3, 23),
             "COVID-19 crash: 19 February 2020 peak close (3386.15) to the 23 March trough (2237.40), -34%."),
    Scenario("rates_2022", date(2022, 1, 3), date(2022, 10, 12),
             "2022 rate-hiking bear market: 3 January peak close (4796.56) to the 12 October trough (3577.03), "
             "-25%."),
)}


# ---------------------------------------------------------------- historical


def historical_stress(positions: Mapping[str, float], prices: pl.DataFrame,
                      scenarios: Sequence[str | Scenario] | None = None) -> pl.DataFrame:
    """Today's positions (``$`` exposure per symbol) through the real returns of each scenario window.

    The positions are bought at the window's first close and held
    (buy-and-hold, no rebalancing); ``prices`` holds daily closes
    (``ts, symbol, close``; other columns are ignored), a symbol that does
    not trade on a day keeps its last close. One row per scenario:
    ``scenario, start, end, days`` (trading days after the first close),
    ``pnl`` ($ at the last close), ``return_on_gross`` (``pnl`` over the
    sum of ``|exposure|``), ``worst_day`` and ``worst_day_pnl`` (the day of
    the largest one-day loss of the whole book), ``max_drawdown`` ($, the
    largest fall of the book's P&L from a running peak, counting its start
    at zero). ``scenarios`` are names in :data:`SCENARIOS` or
    :class:`Scenario` objects; all of the catalogue by default.
    """
    exposure = _positions(positions)
    chosen = _scenarios(scenarios)
    closes = _closes(prices, list(exposure))
    spans = {s: (first.date(), last.date()) for s, first, last in closes.group_by("symbol").agg(
        pl.col("ts").min().alias("first"), pl.col("ts").max().alias("last")).iter_rows()}
    for sc in chosen:
        for symbol, (first, last) in spans.items():
            if first > sc.start or last < sc.end:
                raise DataError(f"scenario '{sc.name}' ({sc.start}..{sc.end}) lies outside the prices of {symbol}, "
                                f"which cover {first}..{last}. Fix: supply closes from on or before {sc.start} "
                                f"through {sc.end}, or leave '{sc.name}' out.")
    wide = (closes.pivot(on="symbol", index="ts", values="close").sort("ts")
            .with_columns(pl.exclude("ts").forward_fill()))
    symbols = list(exposure)
    x = np.array([exposure[s] for s in symbols])
    gross = float(np.abs(x).sum())
    rows = []
    for sc in chosen:
        after_start = pl.col("ts") >= _midnight(sc.start) + timedelta(days=1)
        base = wide.filter(~after_start).tail(1).select(symbols).to_numpy()[0]
        window = wide.filter(after_start & (pl.col("ts") < _midnight(sc.end) + timedelta(days=1)))
        if window.height == 0:
            raise DataError(f"scenario '{sc.name}' ({sc.start}..{sc.end}) holds no trading day after its first "
                            "close in the prices. Fix: widen the window.")
        pnl = (window.select(symbols).to_numpy() / base - 1.0) @ x
        daily = np.diff(np.r_[0.0, pnl])
        worst = int(np.argmin(daily))
        rows.append({"scenario": sc.name, "start": sc.start, "end": sc.end, "days": window.height,
                     "pnl": float(pnl[-1]), "return_on_gross": float(pnl[-1] / gross),
                     "worst_day": window["ts"][worst].date(), "worst_day_pnl": float(daily[worst]),
                     "max_drawdown": float(np.max(np.maximum.accumulate(np.r_[0.0, pnl]) - np.r_[0.0, pnl]))})
    return pl.DataFrame(rows)


def scenario_moves(prices: pl.DataFrame, scenario: str | Scenario, vol_window: int = 20) -> tuple[float, float]:
    """One series' move over a scenario: its return from the first close to the last, and the ratio of its
    realized volatility over the ``vol_window`` daily returns to the scenario's end against the same count to
    its start. The ratio is the volatility shock a scenario applies to options where no implied volatility
    history covers it (the bundled VIX starts in 2014). ``prices``: one symbol's ``ts, close``."""
    check_value("vol_window", vol_window, Annotated[int, at_least(2)])
    sc = scenario_of(scenario)
    closes = prices.sort("ts").select("ts", "close").with_columns(r=pl.col("close").pct_change())
    start, end = _midnight(sc.start) + timedelta(days=1), _midnight(sc.end) + timedelta(days=1)
    before, through = closes.filter(pl.col("ts") < start), closes.filter(pl.col("ts") < end)
    if before.height <= vol_window or through.height == before.height or through["ts"][-1] < _midnight(sc.end):
        raise DataError(f"scenario '{sc.name}' ({sc.start}..{sc.end}) needs {vol_window} closes before its start "
                        f"and closes through its end; the prices cover {closes['ts'][0].date()}.."
                        f"{closes['ts'][-1].date()}. Fix: supply a longer history or leave '{sc.name}' out.")
    move = float(through["close"][-1] / before["close"][-1] - 1.0)
    vol_before = float(before["r"].tail(vol_window).std())
    vol_after = float(through["r"].tail(vol_window).std())
    return move, vol_after / vol_before


def _positions(positions: Mapping[str, float]) -> dict[str, float]:
    """``positions`` as a dict of finite exposures, not all zero."""
    if not isinstance(positions, Mapping) or not positions:
        raise invalid("positions", positions, "a non-empty mapping of symbol to $ exposure")
    for symbol, value in positions.items():
        check_value(f"positions[{symbol!r}]", value, Annotated[float, FINITE])
    if not any(positions.values()):
        raise invalid("positions", dict(positions), "a mapping with at least one non-zero exposure")
    return {str(s): float(v) for s, v in positions.items()}


def scenario_of(scenario: str | Scenario) -> Scenario:
    """The catalogue's scenario of that name (a ``Scenario`` passes as it is)."""
    return _scenarios([scenario])[0]


def _scenarios(scenarios: Sequence[str | Scenario] | None) -> list[Scenario]:
    if scenarios is None:
        return list(SCENARIOS.values())
    if isinstance(scenarios, str | Scenario):
        scenarios = [scenarios]
    chosen = []
    for sc in scenarios:
        if isinstance(sc, Scenario):
            chosen.append(sc)
        elif sc in SCENARIOS:
            chosen.append(SCENARIOS[sc])
        else:
            raise ConfigError(f"scenarios: unknown scenario {sc!r}; known: {list(SCENARIOS)}. Fix: choose from "
                              "these or pass a Scenario(name, start, end, description).", field="scenarios")
    if not chosen:
        raise invalid("scenarios", list(scenarios), "one or more scenario names or Scenario objects")
    return chosen


def _closes(prices: pl.DataFrame, symbols: list[str]) -> pl.DataFrame:
    """The validated closes (``ts, symbol, close``) of ``symbols``; a symbol without prices is refused."""
    missing = [c for c in ("ts", "symbol", "close") if c not in prices.columns]
    if missing:
        raise DataError(f"prices lack columns {missing}; historical stress needs daily closes (ts, symbol, close).")
    closes = validate_bars(prices.select("ts", "symbol", "close"), source="prices", close_only=True)
    present = set(closes["symbol"].unique().to_list())
    absent = [s for s in symbols if s not in present]
    if absent:
        raise DataError(f"positions name symbols {absent} that the prices lack; prices hold {sorted(present)}. "
                        "Fix: add their closes or drop those positions.")
    return closes.filter(pl.col("symbol").is_in(symbols))


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


# ---------------------------------------------------------------- hypothetical


def equity_shock(positions: Mapping[str, float], shock: float = -0.20,
                 betas: Mapping[str, float] | None = None) -> pl.DataFrame:
    """P&L of a uniform equity move ``shock`` (a return, -0.20 for a 20% fall), each position moving by
    ``beta * shock`` (beta 1 where ``betas`` does not name it): ``symbol, exposure, beta, pnl``."""
    exposure = _positions(positions)
    check_value("shock", shock, Annotated[float, above(-1), FINITE])
    betas = dict(betas or {})
    unknown = [s for s in betas if s not in exposure]
    if unknown:
        raise DataError(f"betas name symbols {unknown} that positions lack; positions hold {list(exposure)}.")
    for symbol, beta in betas.items():
        check_value(f"betas[{symbol!r}]", beta, Annotated[float, FINITE])
    beta = [float(betas.get(s, 1.0)) for s in exposure]
    return pl.DataFrame({"symbol": list(exposure), "exposure": list(exposure.values()), "beta": beta}).with_columns(
        pnl=pl.col("exposure") * pl.col("beta") * shock)


@dataclass(frozen=True)
class CorrelationShock:
    """Portfolio volatility and Gaussian VaR (positive loss) before and after the correlations are shocked,
    in the units of ``weights`` times returns per period of ``covariance``."""

    vol_before: float
    vol_after: float
    var_before: float
    var_after: float


def correlation_shock(weights: np.ndarray, covariance: np.ndarray, confidence: float = 0.99,
                      correlation: float = 1.0) -> CorrelationShock:
    """Portfolio volatility and VaR with every pairwise correlation set to ``correlation`` (1 by default),
    volatilities kept: diversification gone.

    With all correlations one the volatility of a long-only book is the sum
    of its weighted volatilities, ``sum_i w_i sigma_i``; a long-short book's
    shorts then offset its longs exactly, so for it the worst case lies
    elsewhere (lower ``correlation`` with care: below ``-1/(N-1)`` no
    correlation matrix exists). VaR is the zero-mean Gaussian
    ``z_confidence * vol``.
    """
    w = np.asarray(weights, dtype=float)
    cov = np.asarray(covariance, dtype=float)
    if w.ndim != 1 or cov.shape != (w.size, w.size) or not (np.isfinite(w).all() and np.isfinite(cov).all()):
        raise DataError(f"weights (N,) and covariance (N, N) must be finite with the same N, got shapes {w.shape} "
                        f"and {cov.shape}.")
    if not np.allclose(cov, cov.T) or np.linalg.eigvalsh(cov).min() < -1e-10 * max(1.0, np.abs(cov).max()):
        raise DataError("covariance must be symmetric positive semi-definite. Fix: pass a covariance estimate "
                        "(sample, EWMA or shrunk).")
    check_value("confidence", confidence, Annotated[float, between(0.5, 1, hi_open=True)])
    floor = -1.0 / (w.size - 1) if w.size > 1 else -1.0
    check_value("correlation", correlation, Annotated[float, between(floor, 1)])
    sd = np.sqrt(np.diag(cov))
    shocked = correlation * np.outer(sd, sd)
    np.fill_diagonal(shocked, sd**2)
    before, after = (float(np.sqrt(max(w @ c @ w, 0.0))) for c in (cov, shocked))
    z = float(stats.norm.ppf(confidence))
    return CorrelationShock(vol_before=before, vol_after=after, var_before=z * before, var_after=z * after)


LEG_COLUMNS = ("symbol", "expiry", "strike", "right", "contracts", "underlying", "tau", "rate", "iv")
SVI_COLUMNS = ("a", "b", "rho", "m", "sigma")


def option_stress(legs: pl.DataFrame, spot_shock: float, vol_shock: float, multiplier: int = 100,
                  hedge: Mapping[str, float] | None = None) -> pl.DataFrame:
    """Full revaluation of option legs (and their underlying hedge) under an instant spot and volatility
    shock, next to the Greek approximation, per symbol.

    ``legs``: one row per leg with ``LEG_COLUMNS`` (``contracts`` signed,
    ``right`` "C"/"P", ``tau`` in years, ``iv`` the leg's mark), optionally
    the raw SVI slice ``a, b, rho, m, sigma`` of its expiry (Gatheral 2004)
    in log-moneyness ``k = log(K / F)`` with ``F = S e^{r tau}``, as
    :meth:`dualhrq.portfolio.book_a.OptionsBook.holdings` returns them.
    The shocked spot is ``S (1 + spot_shock)``. The shocked implied vol is
    ``vol_shock * iv`` without SVI, and with it ``vol_shock`` times the SVI
    vol at the shocked log-moneyness ``log(K / F')``, the smile moving with
    the spot (sticky moneyness). ``hedge`` is shares of the underlying
    per symbol (Book A's delta hedge).

    Columns: ``symbol, spot, shocked_spot, value`` (options' mark value
    before), ``full_pnl`` (BSM reprice of every leg, plus the hedge),
    ``delta_pnl`` (options and hedge), ``gamma_pnl`` (``G dS^2 / 2``),
    ``vega_pnl`` (``V d(sigma)``), ``greek_pnl`` (their sum) and ``gap``
    (``full_pnl - greek_pnl``: the convexity the second-order expansion
    misses, vanna, volga and higher terms).
    """
    check_value("spot_shock", spot_shock, Annotated[float, above(-1), FINITE])
    check_value("vol_shock", vol_shock, Annotated[float, FINITE, above(0)])
    check_value("multiplier", multiplier, PositiveInt)
    legs = _legs(legs)
    hedge = dict(hedge or {})
    unknown = [s for s in hedge if s not in set(legs["symbol"].to_list())]
    if unknown:
        raise DataError(f"hedge names symbols {unknown} that the legs lack; legs hold "
                        f"{legs['symbol'].unique().sort().to_list()}.")
    for symbol, shares in hedge.items():
        check_value(f"hedge[{symbol!r}]", shares, Annotated[float, FINITE])
    s, k, tau, rate, iv = (legs[c].to_numpy() for c in ("underlying", "strike", "tau", "rate", "iv"))
    call = (legs["right"] == "C").to_numpy()
    q = legs["contracts"].to_numpy() * float(multiplier)
    shocked_s = s * (1.0 + spot_shock)
    if all(c in legs.columns for c in SVI_COLUMNS):
        a, b, rho, m, sig = (legs[c].to_numpy() for c in SVI_COLUMNS)
        x = np.log(k / (shocked_s * np.exp(rate * tau))) - m
        shocked_iv = vol_shock * np.sqrt((a + b * (rho * x + np.sqrt(x * x + sig * sig))) / tau)
    else:
        shocked_iv = vol_shock * iv
    before = bsm_price(s, k, tau, rate, iv, call)
    after = bsm_price(shocked_s, k, tau, rate, shocked_iv, call)
    g = bsm_greeks(s, k, tau, rate, iv, call)
    ds = shocked_s - s
    per_leg = pl.DataFrame({
        "symbol": legs["symbol"], "spot": s, "shocked_spot": shocked_s, "value": q * before,
        "full_pnl": q * (after - before), "delta_pnl": q * g["delta"] * ds,
        "gamma_pnl": 0.5 * q * g["gamma"] * ds**2, "vega_pnl": q * g["vega"] * (shocked_iv - iv)})
    hedge_pnl = pl.col("symbol").replace_strict(hedge, default=0.0, return_dtype=pl.Float64) * (
        pl.col("shocked_spot") - pl.col("spot"))
    return (per_leg.group_by("symbol", maintain_order=True)
            .agg(pl.col("spot", "shocked_spot").first(), pl.col("value", "full_pnl", "delta_pnl", "gamma_pnl",
                                                                  "vega_pnl").sum())
            .with_columns(full_pnl=pl.col("full_pnl") + hedge_pnl, delta_pnl=pl.col("delta_pnl") + hedge_pnl)
            .with_columns(greek_pnl=pl.sum_horizontal("delta_pnl", "gamma_pnl", "vega_pnl"))
            .with_columns(gap=pl.col("full_pnl") - pl.col("greek_pnl"))
            .sort("symbol"))


def vol_shock(legs: pl.DataFrame, factor: float = 2.0, multiplier: int = 100,
              hedge: Mapping[str, float] | None = None) -> pl.DataFrame:
    """Implied volatility of every leg times ``factor`` (doubled by default), spot unchanged:
    :func:`option_stress` with ``spot_shock=0``."""
    return option_stress(legs, 0.0, factor, multiplier, hedge)


def _legs(legs: pl.DataFrame) -> pl.DataFrame:
    """``legs`` checked: the columns present, every number finite, prices, tenors and vols positive."""
    missing = [c for c in LEG_COLUMNS if c not in legs.columns]
    if missing:
        raise DataError(f"legs lack columns {missing}; option stress needs {list(LEG_COLUMNS)}.")
    svi = [c for c in SVI_COLUMNS if c in legs.columns]
    if svi and len(svi) != len(SVI_COLUMNS):
        raise DataError(f"legs hold SVI columns {svi} but not {[c for c in SVI_COLUMNS if c not in svi]}. "
                        f"Fix: give the whole raw SVI slice {list(SVI_COLUMNS)} or none of it.")
    if legs.height == 0:
        raise DataError("legs: no rows. Fix: pass the legs held, one row per option.")
    numbers = ["contracts", "underlying", "strike", "tau", "rate", "iv", *svi]
    legs = legs.with_columns(pl.col(numbers).cast(pl.Float64))
    rules = [(c, ~pl.col(c).is_finite().fill_null(False), "null, NaN or infinite") for c in numbers]
    rules += [(c, pl.col(c) <= 0, "not positive") for c in ("underlying", "strike", "tau", "iv")]
    rules += [("right", ~pl.col("right").is_in(["C", "P"]).fill_null(False), "not 'C' or 'P'")]
    for column, bad, what in rules:
        count = legs.select(bad.sum()).item()
        if count:
            raise DataError(f"legs: column '{column}' is {what} in {count} rows. Fix: drop or correct those legs.")
    return legs


# ---------------------------------------------------------------- simulated


@dataclass(frozen=True)
class GarchScenarios:
    """Simulated paths of cumulative simple returns, shape ``(n_paths, horizon)``, and the fitted GARCH
    parameters (arch's names: ``mu, omega, alpha[1], beta[1], nu``, returns in percent)."""

    paths: np.ndarray
    params: dict[str, float]

    @property
    def horizon_returns(self) -> np.ndarray:
        """The h-day return of every path."""
        return self.paths[:, -1]

    @property
    def worst_path(self) -> np.ndarray:
        """The path with the lowest h-day return."""
        return self.paths[int(np.argmin(self.horizon_returns))]

    def quantiles(self, levels: Sequence[float] = (0.01, 0.05, 0.5, 0.95, 0.99)) -> dict[float, float]:
        """Empirical quantiles of the h-day return; the 1% one is minus the 99% h-day VaR."""
        for level in levels:
            check_value("levels", level, Annotated[float, between(0, 1)])
        return {float(q): float(v) for q, v in zip(levels, np.quantile(self.horizon_returns, levels), strict=True)}


def garch_scenarios(returns: np.ndarray, horizon: int = 10, n_paths: int = 10_000, seed: int = 0) -> GarchScenarios:
    """Monte Carlo h-day scenarios from a GARCH(1,1) (Bollerslev 1986) with Student-t innovations (Bollerslev
    1987) and a constant mean, fitted by arch to daily simple ``returns`` and simulated forward from the last
    day's conditional variance by arch's ``forecast(method="simulation")``.

    The model is fitted to log returns in percent (arch's preferred scale);
    each path's daily log returns are summed and turned back into simple
    cumulative returns, so the paths compound.
    """
    check_value("horizon", horizon, PositiveInt)
    check_value("n_paths", n_paths, PositiveInt)
    check_value("seed", seed, Annotated[int, at_least(0)])
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1 or r.size < 100 or not np.isfinite(r).all() or (r <= -1).any():
        raise DataError(f"returns must be a 1-D series of at least 100 finite simple returns above -1, got shape "
                        f"{r.shape}. Fix: pass a longer daily series.")
    from arch.univariate import GARCH, ConstantMean, StudentsT

    model = ConstantMean(100.0 * np.log1p(r), volatility=GARCH(1, 0, 1),
                         distribution=StudentsT(seed=np.random.default_rng(seed)))
    fit = model.fit(disp="off")
    if fit.convergence_flag != 0:
        raise DataError(f"GARCH(1,1) fit did not converge (optimizer flag {fit.convergence_flag}). Fix: pass a "
                        "longer or cleaner return series.")
    sims = fit.forecast(horizon=horizon, method="simulation", simulations=n_paths, reindex=False)
    log_paths = np.cumsum(sims.simulations.values[-1], axis=1) / 100.0
    return GarchScenarios(paths=np.expm1(log_paths), params={k: float(v) for k, v in fit.params.items()})

