"""Implied-volatility surface features (option prices and Greeks: :mod:`dualhrq.primitives.bsm`).

- Raw SVI smiles (Gatheral 2004) fitted per expiry with the quasi-explicit
  method of Zeliade (2009): for fixed ``(m, sigma)`` the total variance is
  linear in the other three parameters, so only two are searched.
- Static-arbitrage checks (Gatheral & Jacquier 2014): butterfly arbitrage
  where the density factor ``g(k)`` turns negative, calendar arbitrage where
  total variance falls from one expiry to the next at some log-moneyness.
- Daily surface features per (date, symbol): ATM volatility, the ATM term
  structure slope, and the 25-delta risk reversal and butterfly.

Log-moneyness is ``k = ln(K / F)`` with ``F`` the forward; total variance is
``w = iv^2 * tau``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import optimize
from scipy.special import ndtri

from dualhrq.errors import DataError
from dualhrq.primitives.bsm import ArrayLike

# ---------------------------------------------------------------- SVI


@dataclass(frozen=True)
class SVIRaw:
    """Raw SVI total variance ``w(k) = a + b (rho (k - m) + sqrt((k - m)^2 + sigma^2))``."""

    a: float
    b: float
    rho: float
    m: float
    sigma: float

    def total_variance(self, k: ArrayLike) -> np.ndarray:
        x = np.asarray(k, dtype=float) - self.m
        return self.a + self.b * (self.rho * x + np.sqrt(x * x + self.sigma**2))

    def derivatives(self, k: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """(w'(k), w''(k))."""
        x = np.asarray(k, dtype=float) - self.m
        root = np.sqrt(x * x + self.sigma**2)
        return self.b * (self.rho + x / root), self.b * self.sigma**2 / root**3

    def butterfly_density(self, k: ArrayLike) -> np.ndarray:
        """g(k) of Gatheral & Jacquier (2014, eq. 2.1); the smile has no butterfly arbitrage iff g >= 0."""
        w = self.total_variance(k)
        w1, w2 = self.derivatives(k)
        return (1 - np.asarray(k) * w1 / (2 * w)) ** 2 - w1**2 / 4 * (1 / w + 0.25) + w2 / 2


@dataclass(frozen=True)
class SVIFit:
    """A fitted slice and its root-mean-square error in total variance."""

    params: SVIRaw
    rmse: float


def fit_svi(k: np.ndarray, w: np.ndarray) -> SVIFit:
    """Least-squares raw SVI through ``(k, w)`` points of one expiry (Zeliade 2009).

    With ``y = (k - m) / sigma`` the slice is ``a + d y + c sqrt(y^2 + 1)``
    (``c = b sigma``, ``d = rho b sigma``), linear in ``(a, d, c)``; the outer
    search over ``(m, log sigma)`` runs Levenberg-Marquardt from a small grid of starts.
    Needs at least 5 points with positive total variance.
    """
    k, w = np.asarray(k, dtype=float), np.asarray(w, dtype=float)
    if k.shape != w.shape or k.size < 5:
        raise DataError(f"fit_svi: needs >= 5 (k, w) points of equal length, got {k.size} and {w.size}.")
    if not (np.isfinite(k).all() and np.isfinite(w).all() and (w > 0).all()):
        raise DataError("fit_svi: total variances must be finite and positive. Fix: drop bad quotes.")

    def inner(m: float, sigma: float) -> tuple[np.ndarray, np.ndarray]:
        y = (k - m) / sigma
        design = np.column_stack([np.ones_like(y), y, np.sqrt(y * y + 1)])
        coef, *_ = np.linalg.lstsq(design, w, rcond=None)
        return coef, design @ coef - w

    def residuals(theta: np.ndarray) -> np.ndarray:
        return inner(theta[0], math.exp(theta[1]))[1]

    span = float(k.max() - k.min())
    starts = [(0.0, math.log(0.1 * span)), (k.min() * 0.5, math.log(0.3 * span)), (k.max() * 0.5, math.log(0.3 * span))]
    best = min((optimize.least_squares(residuals, np.array(s), method="lm", xtol=1e-14, ftol=1e-14, gtol=1e-14)
                for s in starts), key=lambda r: r.cost)
    m, sigma = float(best.x[0]), math.exp(best.x[1])
    (a, d, c), resid = inner(m, sigma)
    b = c / sigma
    rho = float(np.clip(d / c, -0.999999, 0.999999)) if c > 0 else 0.0
    return SVIFit(SVIRaw(float(a), float(b), rho, m, sigma), float(np.sqrt(np.mean(resid**2))))


@dataclass(frozen=True)
class ArbitrageCheck:
    """Worst values over the k grid: min g(k) per expiry and min w(k, T2) - w(k, T1) per expiry pair."""

    butterfly_min_g: np.ndarray
    calendar_min_gap: np.ndarray

    @property
    def butterfly_free(self) -> bool:
        return bool((self.butterfly_min_g >= -1e-10).all())

    @property
    def calendar_free(self) -> bool:
        return bool((self.calendar_min_gap >= -1e-10).all())


def check_static_arbitrage(slices: list[SVIRaw], k_grid: np.ndarray | None = None) -> ArbitrageCheck:
    """Butterfly and calendar checks of SVI slices ordered by increasing expiry."""
    grid = np.linspace(-1.5, 1.5, 601) if k_grid is None else np.asarray(k_grid, dtype=float)
    butterfly = np.array([s.butterfly_density(grid).min() for s in slices])
    calendar = np.array([(later.total_variance(grid) - earlier.total_variance(grid)).min()
                         for earlier, later in zip(slices, slices[1:], strict=False)])
    return ArbitrageCheck(butterfly, calendar)


# ---------------------------------------------------------------- surface features


def _delta_strike(fit: SVIRaw, delta: float, call: bool, k_range: tuple[float, float]) -> float:
    """Log-moneyness in ``k_range`` whose forward (undiscounted) BSM delta is ``delta`` on the fitted smile."""
    target = ndtri(delta if call else 1 + delta)  # N(d1) for calls, N(d1) = 1 + delta for puts

    def gap(k: float) -> float:
        w = max(float(fit.total_variance(k)), 1e-12)
        return (-k + 0.5 * w) / math.sqrt(w) - target

    lo, hi = k_range
    if gap(lo) * gap(hi) > 0:
        raise DataError(f"option chain: no strike with |delta| = {delta} quoted; the strikes span k in "
                        f"[{lo:.3f}, {hi:.3f}]. Fix: quote strikes further from the money.")
    return optimize.brentq(gap, lo, hi, xtol=1e-12)


def surface_features(chain: pl.DataFrame) -> pl.DataFrame:
    """Per (date, symbol): ``atm_iv`` (nearest expiry), ``atm_term_slope`` (d ATM iv / d tau, by least
    squares across expiries), ``rr25`` and ``bf25`` (nearest expiry: 25-delta call iv minus put iv, and
    their mean minus ATM iv), ``svi_rmse`` (worst slice fit) and ``arbitrage_free`` (1.0 when the fitted
    slices pass the butterfly and calendar checks).

    ``chain`` has the option-chain columns (``date, symbol, expiry, tau, strike, underlying, rate, iv``);
    the forward is ``underlying * exp(rate * tau)``. Each output row uses that day's chain only.
    """
    needed = ["date", "symbol", "expiry", "tau", "strike", "underlying", "rate", "iv"]
    missing = [c for c in needed if c not in chain.columns]
    if missing:
        raise DataError(f"option chain: missing columns {missing}. Fix: supply {needed}.")
    frame = chain.with_columns(
        k=(pl.col("strike") / (pl.col("underlying") * (pl.col("rate") * pl.col("tau")).exp())).log(),
        w=pl.col("iv") ** 2 * pl.col("tau"),
    ).sort("date", "symbol", "tau", "strike")
    rows = []
    for (day, symbol), day_chain in frame.group_by("date", "symbol", maintain_order=True):
        slices, taus, rmse, k_ranges = [], [], 0.0, []
        for (_, tau), one in day_chain.group_by("expiry", "tau", maintain_order=True):
            quotes = one.unique("strike", keep="first", maintain_order=True)  # a call and a put share an iv
            fit = fit_svi(quotes["k"].to_numpy(), quotes["w"].to_numpy())
            slices.append(fit.params)
            taus.append(tau)
            k_ranges.append((quotes["k"].min(), quotes["k"].max()))
            rmse = max(rmse, fit.rmse)
        tau_arr = np.asarray(taus)
        atm = np.sqrt(np.array([float(s.total_variance(0.0)) for s in slices]) / tau_arr)
        slope = float(np.polyfit(tau_arr, atm, 1)[0]) if len(slices) > 1 else 0.0
        near = slices[0]
        wing = [_delta_strike(near, 0.25 if call else -0.25, call, k_ranges[0]) for call in (True, False)]
        iv_at = [math.sqrt(float(near.total_variance(k)) / taus[0]) for k in wing]
        check = check_static_arbitrage(slices)
        rows.append((day, symbol, atm[0], slope, iv_at[0] - iv_at[1], 0.5 * sum(iv_at) - atm[0], rmse,
                     float(check.butterfly_free and check.calendar_free)))
    return pl.DataFrame(rows, orient="row", schema={
        "date": pl.Date, "symbol": pl.String, "atm_iv": pl.Float64, "atm_term_slope": pl.Float64,
        "rr25": pl.Float64, "bf25": pl.Float64, "svi_rmse": pl.Float64, "arbitrage_free": pl.Float64})
