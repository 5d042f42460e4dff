"""Value at Risk and Expected Shortfall (CVaR) of a return series, by four methods.

Both are reported as positive loss fractions of capital: ``var`` is the loss
exceeded with probability ``1 - level`` over ``horizon`` days, ``cvar`` the
mean loss beyond it (Acerbi & Tasche 2002, "On the coherence of expected
shortfall"). ``returns`` are daily simple returns, oldest first.

* ``historical``: the empirical quantile of the returns (:data:`QUANTILE`) and
  the mean of those at or below it; for ``horizon > 1`` those of the
  overlapping ``horizon``-day compounded returns, which share days, so their
  tail count overstates the independent evidence about ``horizon`` times.
* ``normal``: mean ``mu`` and standard deviation ``sigma`` (ddof=1) scaled to
  ``mu h`` and ``sigma sqrt(h)``; ``VaR = -(mu + sigma z_{1-a})``,
  ``CVaR = -(mu - sigma phi(z_a) / (1 - a))``.
* ``student_t``: location, scale and degrees of freedom ``nu`` by maximum
  likelihood (``scipy.stats.t.fit``, started from the moments), with the closed-form shortfall of a
  standard t, ``E[T | T <= q] = -(nu + q^2) / (nu - 1) pdf(q) / (1 - a)``
  (McNeil, Frey & Embrechts, "Quantitative Risk Management", 2015; infinite
  for ``nu <= 1``). The ``horizon``-day scale is ``scale sqrt(h)``: a sum of t
  variables is not t, so this is an approximation, exact only in the normal
  limit.
* ``fhs``: filtered historical simulation (Barone-Adesi, Giannopoulos & Vosper
  1999, "VaR without correlations for portfolios of derivative securities").
  A constant-mean GARCH(1,1) fitted by ``arch`` gives standardised residuals
  ``z`` and the next day's volatility ``sigma_{T+1}``; the 1-day figures are
  the exact tail of ``mu + sigma_{T+1} z`` over all residuals, the ``h``-day
  ones the tail of ``n_sims`` compounded paths that bootstrap the residuals
  through the fitted variance recursion (``arch``'s bootstrap forecast, seeded).

:func:`rolling_var` gives the point-in-time 1-day forecasts that
:mod:`dualhrq.risk.var_backtest` tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import polars as pl
from arch import arch_model
from arch.univariate.base import ARCHModelResult
from numpy.lib.stride_tricks import sliding_window_view
from scipy import stats

from dualhrq.config import PositiveInt, between, check_value, invalid, one_of
from dualhrq.errors import DataError

__all__ = ["METHODS", "MIN_OBSERVATIONS", "QUANTILE", "RiskEstimate", "min_observations", "risk_table", "rolling_var",
           "var_cvar"]

METHODS = ("historical", "normal", "student_t", "fhs")
# fewest observations a fit is worth making on; the historical and fhs tails also need at least one
# observation beyond the quantile (see min_observations)
MIN_OBSERVATIONS = {"historical": 30, "normal": 30, "student_t": 30, "fhs": 250}

# Hyndman & Fan (1996, "Sample quantiles in statistical packages") type 6: the order statistic at position
# (1 - level)(n + 1), interpolated, whose expected coverage is exactly 1 - level for iid draws; numpy's default
# (type 7) under-covers from a short window (1.2% of days instead of 1% at level 0.99 from 500 observations)
QUANTILE = "weibull"
Level = Annotated[float, between(0, 1, lo_open=True, hi_open=True)]
Method = Annotated[str, one_of(METHODS)]
Real = float | np.ndarray  # a number, or one per rolling window


@dataclass(frozen=True)
class RiskEstimate:
    """VaR and CVaR at ``level`` over ``horizon`` days by ``method``, as positive loss fractions."""

    method: str
    level: float
    horizon: int
    var: float
    cvar: float


def var_cvar(returns: np.ndarray, level: float = 0.99, horizon: int = 1, method: str = "historical",
             seed: int = 0, n_sims: int = 10_000) -> RiskEstimate:
    """VaR and CVaR of daily ``returns`` by ``method`` (see the module docstring); ``seed`` and ``n_sims``
    drive the ``fhs`` paths for ``horizon > 1``."""
    (row,) = risk_table(returns, (level,), (horizon,), (method,), seed=seed, n_sims=n_sims).iter_rows(named=True)
    return RiskEstimate(**row)


def risk_table(returns: np.ndarray, levels: Sequence[float] = (0.95, 0.99), horizons: Sequence[int] = (1, 10),
               methods: Sequence[str] = METHODS, *, seed: int = 0, n_sims: int = 10_000) -> pl.DataFrame:
    """One row (method, level, horizon, var, cvar) per method x level x horizon; each model is fitted once."""
    levels, horizons, methods = tuple(levels), tuple(horizons), tuple(methods)
    for name, values, kind in (("level", levels, Level), ("horizon", horizons, PositiveInt),
                               ("method", methods, Method)):
        if not values:
            raise invalid(f"{name}s", values, f"a non-empty sequence of {name}s")
        for value in values:
            check_value(name, value, kind)
    check_value("seed", seed, Annotated[int, between(0, 2**32 - 1)])  # numpy's RandomState, which arch takes
    check_value("n_sims", n_sims, PositiveInt)
    r = _checked_returns(returns)
    for method in methods:
        for level in levels:
            _check_sample(r, method, level, max(horizons))
    rows = []
    for method in methods:
        estimates = _ESTIMATORS[method](r, levels, horizons, seed, n_sims)
        rows += [(method, level, h, *estimates[level, h]) for level in levels for h in horizons]
    return pl.DataFrame(rows, schema={"method": pl.String, "level": pl.Float64, "horizon": pl.Int64,
                                      "var": pl.Float64, "cvar": pl.Float64}, orient="row")


def rolling_var(returns: np.ndarray, level: float, method: str, window: int = 250, refit_every: int = 20) -> np.ndarray:
    """Point-in-time 1-day VaR forecasts: entry ``t`` uses ``returns[t - window:t]`` only; NaN for ``t < window``.

    ``historical`` and ``normal`` are re-estimated every day. ``student_t`` and
    ``fhs`` are refitted every ``refit_every`` days on the trailing window;
    in between, ``fhs`` keeps the GARCH parameters but filters the variance
    forward through each new return and rolls its pool of standardised
    residuals (those of the last ``window`` days under the current fit), while
    the ``student_t`` forecast stays at its fitted value.
    """
    check_value("level", level, Level)
    check_value("method", method, Method)
    check_value("window", window, PositiveInt)
    check_value("refit_every", refit_every, PositiveInt)
    needed = min_observations(method, level)
    if window < needed:
        raise invalid("window", window, f">= {needed} for method {method!r} at level {level}",
                      f"pass window={needed} or more.")
    r = _checked_returns(returns)
    if r.size <= window:
        raise DataError(f"returns has {r.size} observations, which leaves no day to forecast after a window of "
                        f"{window}. Fix: pass more than {window} returns or a shorter window.")
    refits = range(window, r.size, refit_every)
    flat = [k for k in refits if method in ("student_t", "fhs") and np.ptp(r[k - window:k]) == 0]
    if flat:
        raise DataError(f"returns are constant over the {window} days before day {flat[0]}; method {method!r} "
                        "has no scale to fit there. Fix: drop the stale prices or use 'historical' or 'normal'.")
    out = np.full(r.size, np.nan)
    if method == "historical":
        out[window:] = -np.quantile(sliding_window_view(r[:-1], window), 1 - level, axis=1, method=QUANTILE)
    elif method == "normal":
        windows = sliding_window_view(r[:-1], window)
        out[window:] = _normal_tail(windows.mean(axis=1), windows.std(axis=1, ddof=1), level)[0]
    elif method == "student_t":
        for k in refits:
            out[k:k + refit_every] = _t_tail(*_fit_t(r[k - window:k]), level)[0]
    else:
        for k in refits:
            end = min(k + refit_every, r.size)
            fit = _GarchFit.of(r[k - window:k])
            sigma2 = fit.filter(r[k - 1:end - 1], fit.sigma2[-1])
            z = np.concatenate([fit.std_resid, (r[k:end - 1] - fit.mu) / np.sqrt(sigma2[:-1])])
            pools = sliding_window_view(z, window)  # day t's residuals: those of days t - window .. t - 1
            out[k:end] = -(fit.mu + np.sqrt(sigma2) * np.quantile(pools, 1 - level, axis=1, method=QUANTILE))
    return out


# ---------------------------------------------------------------- the methods


def _historical(r: np.ndarray, levels: tuple[float, ...], horizons: tuple[int, ...], seed: int,
                n_sims: int) -> dict[tuple[float, int], tuple[float, float]]:
    out = {}
    for h in horizons:
        sample = r if h == 1 else np.prod(1.0 + sliding_window_view(r, h), axis=1) - 1.0
        out.update({(level, h): _empirical_tail(sample, level) for level in levels})
    return out


def _normal(r: np.ndarray, levels: tuple[float, ...], horizons: tuple[int, ...], seed: int,
            n_sims: int) -> dict[tuple[float, int], tuple[float, float]]:
    mu, sigma = r.mean(), r.std(ddof=1)
    return {(level, h): _normal_tail(mu * h, sigma * math.sqrt(h), level) for level in levels for h in horizons}


def _student_t(r: np.ndarray, levels: tuple[float, ...], horizons: tuple[int, ...], seed: int,
               n_sims: int) -> dict[tuple[float, int], tuple[float, float]]:
    df, loc, scale = _fit_t(r)
    return {(level, h): _t_tail(df, loc * h, scale * math.sqrt(h), level) for level in levels for h in horizons}


def _fhs(r: np.ndarray, levels: tuple[float, ...], horizons: tuple[int, ...], seed: int,
         n_sims: int) -> dict[tuple[float, int], tuple[float, float]]:
    fit = _GarchFit.of(r)
    samples = {1: fit.mu + math.sqrt(fit.filter(r[-1:], fit.sigma2[-1])[0]) * fit.std_resid}
    longest = max(horizons)
    if longest > 1:
        # arch bootstraps the standardised residuals through the fitted recursion from the last variance
        paths = fit.result.forecast(horizon=longest, method="bootstrap", simulations=n_sims, reindex=False,
                                    random_state=np.random.RandomState(seed)).simulations.values[0]
        wealth = np.cumprod(1.0 + paths / fit.result.scale, axis=1)
        samples.update({h: wealth[:, h - 1] - 1.0 for h in horizons if h > 1})
    return {(level, h): _empirical_tail(samples[h], level) for level in levels for h in horizons}


def _fit_t(r: np.ndarray) -> tuple[float, float, float]:
    """``scipy.stats.t.fit`` (maximum likelihood) from method-of-moments starting values: ``nu`` from the excess
    kurtosis ``6 / (nu - 4)``, the median, and the scale that matches the variance. From scipy's own start the
    optimiser stops near ``nu = 2`` on near-normal returns of small scale (daily std 0.1%), far from the optimum."""
    kurtosis = stats.kurtosis(r)
    df = 4 + 6 / kurtosis if kurtosis > 0 else 100.0
    return stats.t.fit(r, df, loc=np.median(r), scale=r.std() * math.sqrt((df - 2) / df))


_ESTIMATORS = {"historical": _historical, "normal": _normal, "student_t": _student_t, "fhs": _fhs}


@dataclass(frozen=True)
class _GarchFit:
    """A constant-mean GARCH(1,1) fitted by arch, its parameters and variances in the returns' own units."""

    result: ARCHModelResult  # on the data times result.scale (arch's rescaling to a well-conditioned fit)
    mu: float
    omega: float
    alpha: float
    beta: float
    sigma2: np.ndarray  # conditional variance of each fitted day
    std_resid: np.ndarray

    @classmethod
    def of(cls, r: np.ndarray) -> _GarchFit:
        result = arch_model(r, mean="Constant", vol="GARCH", p=1, q=1, rescale=True).fit(disp="off")
        s = result.scale
        p = result.params
        return cls(result, p["mu"] / s, p["omega"] / s**2, p["alpha[1]"], p["beta[1]"],
                   np.asarray(result.conditional_volatility / s) ** 2, np.asarray(result.std_resid))

    def filter(self, previous_returns: np.ndarray, sigma2_before: float) -> np.ndarray:
        """Variance of each day after those of ``previous_returns``, the first of which had ``sigma2_before``:
        ``sigma2_{t+1} = omega + alpha (r_t - mu)^2 + beta sigma2_t``."""
        out = np.empty(previous_returns.size)
        s2 = sigma2_before
        for i, x in enumerate(previous_returns):
            s2 = self.omega + self.alpha * (x - self.mu) ** 2 + self.beta * s2
            out[i] = s2
        return out


# ---------------------------------------------------------------- tails


def _empirical_tail(sample: np.ndarray, level: float) -> tuple[float, float]:
    """VaR = minus the ``1 - level`` quantile, CVaR = minus the mean at or below it. See :data:`QUANTILE`."""
    q = np.quantile(sample, 1 - level, method=QUANTILE)
    return float(-q), float(-sample[sample <= q].mean())


def _normal_tail(mu: Real, sigma: Real, level: float) -> tuple[Real, Real]:
    z = stats.norm.ppf(1 - level)
    return -(mu + sigma * z), -(mu - sigma * stats.norm.pdf(z) / (1 - level))


def _t_tail(df: float, loc: Real, scale: Real, level: float) -> tuple[Real, Real]:
    q = stats.t.ppf(1 - level, df)
    shortfall = (df + q**2) / (df - 1) * stats.t.pdf(q, df) / (1 - level) if df > 1 else math.inf
    return -(loc + scale * q), -(loc - scale * shortfall)


# ---------------------------------------------------------------- input


def _checked_returns(returns: np.ndarray) -> np.ndarray:
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1:
        raise DataError(f"returns must be a 1-D array of daily returns, got shape {r.shape}. "
                        "Fix: pass one series (a portfolio's returns, or one symbol's).")
    bad = np.flatnonzero(~np.isfinite(r))
    if bad.size:
        raise DataError(f"returns must be finite, got {bad.size} NaN/inf values (first at position {bad[0]}). "
                        "Fix: drop or fill the missing days before measuring risk.")
    if (r < -1).any():
        raise DataError("returns must be simple returns >= -1 (no loss beyond the capital), got "
                        f"{r.min():.4g}. Fix: pass simple, not log or percentage, returns.")
    return r


def min_observations(method: str, level: float, horizon: int = 1) -> int:
    """Observations ``method`` needs: the fit's floor, and for the empirical tails at least one (h-day) return
    beyond the quantile. fhs asks for a year: GARCH(1,1) is poorly identified on less (Basel's minimum too)."""
    tail = math.ceil(1 / (1 - level) - 1e-9) if method in ("historical", "fhs") else 0
    if method == "historical":
        tail += horizon - 1
    return max(MIN_OBSERVATIONS[method], tail)


def _check_sample(r: np.ndarray, method: str, level: float, horizon: int) -> None:
    needed = min_observations(method, level, horizon)
    if r.size < needed:
        raise DataError(f"returns has {r.size} observations; method {method!r} at level {level} and horizon "
                        f"{horizon} needs at least {needed}. Fix: pass a longer history, a lower level or "
                        "another method.")
    if method in ("student_t", "fhs") and np.ptp(r) == 0:
        raise DataError(f"returns are constant ({float(r[0])!r}); method {method!r} has no scale to fit. Fix: use "
                        "'historical' or 'normal', whose VaR of a constant series is minus that constant.")
