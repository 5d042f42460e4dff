"""Implied-volatility surface features (option prices and Greeks: :mod:`dualhrq.primitives.bsm`).

- Raw SVI smiles (Gatheral 2004) fitted per expiry with the quasi-explicit
  method of Zeliade (2009): for fixed ``(m, sigma)`` the total variance is
  linear in the other three parameters, so only two are searched and the
  other three solve a bounded least squares.
- Static-arbitrage checks (Gatheral & Jacquier 2014) over the quoted strikes:
  butterfly arbitrage where the density factor ``g(k)`` turns negative,
  calendar arbitrage where total variance falls from one expiry to the next
  at some log-moneyness.
- Daily surface features per (date, symbol): ATM volatility, the ATM term
  structure slope, and the 25-delta risk reversal and butterfly.

Log-moneyness is ``k = ln(K / F)`` with ``F`` the forward; total variance is
``w = iv^2 * tau``. "ATM" is ATM-forward (``K = F``, ``k = 0``), and deltas
are forward deltas (undiscounted ``N(d1)``, ``N(d1) - 1`` for puts).
"""

from __future__ import annotations

import math
from collections.abc import Callable
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
    """A fitted slice and the root-mean-square error in total variance of exactly these parameters."""

    params: SVIRaw
    rmse: float


def fit_svi(k: np.ndarray, w: np.ndarray) -> SVIFit:
    """Least-squares raw SVI through ``(k, w)`` points of one expiry (Zeliade 2009).

    With ``y = (k - m) / sigma`` the slice is ``a + d y + c sqrt(y^2 + 1)``
    (``c = b sigma``, ``d = rho b sigma``), linear in ``(a, d, c)``. Those are
    fitted inside Zeliade's domain ``0 <= c <= 4 sigma``, ``|d| <= c``,
    ``|d| <= 4 sigma - c``, ``0 <= a <= max w``, so that ``b >= 0``,
    ``|rho| <= 1`` and the wing slopes ``b (1 +/- rho)`` stay within 4 (Rogers
    & Tehranchi): in ``u = c + d``, ``v = c - d`` that domain is a box, and
    the inner problem is a bounded least squares. A sparse or noisy slice
    then gets the best admissible curve instead of one whose ``rho`` must be
    clipped. The outer search over ``(m, log sigma)`` runs Levenberg-Marquardt
    from a small grid of starts. Needs at least 5 points with positive total
    variance. The bound ``a >= 0`` also rules out the valid slices with
    ``a < 0`` whose minimum ``a + b sigma sqrt(1 - rho^2)`` is still positive.
    """
    k, w = np.asarray(k, dtype=float), np.asarray(w, dtype=float)
    if k.shape != w.shape or k.size < 5:
        raise DataError(f"fit_svi: needs >= 5 (k, w) points of equal length, got {k.size} and {w.size}.")
    if not (np.isfinite(k).all() and np.isfinite(w).all() and (w > 0).all()):
        raise DataError("fit_svi: total variances must be finite and positive. Fix: drop bad quotes.")
    w_max = float(w.max())

    def inner(m: float, sigma: float) -> tuple[np.ndarray, np.ndarray]:
        y = (k - m) / sigma
        root = np.sqrt(y * y + 1)
        design = np.column_stack([np.ones_like(y), (root + y) / 2, (root - y) / 2])  # columns of a, u, v
        upper = np.array([w_max, 4 * sigma, 4 * sigma])
        coef, *_ = np.linalg.lstsq(design, w, rcond=None)
        if not ((coef >= 0).all() and (coef <= upper).all()):  # else the free optimum is the bounded one
            coef = optimize.lsq_linear(design, w, bounds=(np.zeros(3), upper), method="bvls").x
        return coef, design @ coef - w

    def residuals(theta: np.ndarray) -> np.ndarray:
        return inner(theta[0], math.exp(theta[1]))[1]

    span = float(k.max() - k.min())
    starts = [(0.0, math.log(0.1 * span)), (k.min() * 0.5, math.log(0.3 * span)), (k.max() * 0.5, math.log(0.3 * span))]
    best = min((optimize.least_squares(residuals, np.array(s), method="lm", xtol=1e-14, ftol=1e-14, gtol=1e-14)
                for s in starts), key=lambda r: r.cost)
    m, sigma = float(best.x[0]), math.exp(best.x[1])
    a, u, v = inner(m, sigma)[0]
    b = (u + v) / (2 * sigma)
    rho = (u - v) / (u + v) if u + v > 0 else 0.0
    params = SVIRaw(float(a), float(b), float(rho), m, sigma)
    return SVIFit(params, float(np.sqrt(np.mean((params.total_variance(k) - w) ** 2))))


@dataclass(frozen=True)
class Violation:
    """One stretch ``[k_lo, k_hi]`` of checked log-moneyness where a check fails.

    ``kind`` is ``"butterfly"`` (``slices`` = the expiry's index, ``worst`` = min g) or ``"calendar"``
    (``slices`` = the earlier and later expiry, ``worst`` = min w(later) - w(earlier)), reached at ``k_worst``.
    """

    kind: str
    slices: tuple[int, ...]
    k_lo: float
    k_hi: float
    k_worst: float
    worst: float


@dataclass(frozen=True)
class ArbitrageCheck:
    """Worst values over the checked range: min g(k) per expiry and min w(k, T2) - w(k, T1) per expiry pair
    (NaN where two expiries' quoted ranges do not overlap), and every violation's location."""

    butterfly_min_g: np.ndarray
    calendar_min_gap: np.ndarray
    violations: tuple[Violation, ...]

    @property
    def butterfly_free(self) -> bool:
        return not any(v.kind == "butterfly" for v in self.violations)

    @property
    def calendar_free(self) -> bool:
        return not any(v.kind == "calendar" for v in self.violations)


_TOLERANCE = 1e-10


def check_static_arbitrage(slices: list[SVIRaw], k_ranges: list[tuple[float, float]], margin: float = 0.0,
                           step: float = 0.0025) -> ArbitrageCheck:
    """Butterfly and calendar checks of SVI slices ordered by increasing expiry, where quotes back them.

    Slice ``i`` is checked for butterfly arbitrage on its quoted range ``k_ranges[i]`` widened by
    ``margin`` on each side; two consecutive expiries are checked for calendar arbitrage where both
    widened ranges overlap. A fitted smile says little beyond its quotes, so extrapolated wings neither
    raise nor hide an alarm unless ``margin`` asks for them. Grids have spacing at most ``step``.
    """
    if len(k_ranges) != len(slices):
        raise ValueError(f"check_static_arbitrage: {len(slices)} slices but {len(k_ranges)} quoted ranges")
    if margin < 0:
        raise ValueError(f"check_static_arbitrage: margin must be >= 0, got {margin}")
    ranges = [(float(lo) - margin, float(hi) + margin) for lo, hi in k_ranges]
    violations: list[Violation] = []
    butterfly = np.array([_scan(s.butterfly_density, ranges[i], step, "butterfly", (i,), violations)
                          for i, s in enumerate(slices)])
    calendar = []
    for i, (earlier, later) in enumerate(zip(slices, slices[1:], strict=False)):
        overlap = (max(ranges[i][0], ranges[i + 1][0]), min(ranges[i][1], ranges[i + 1][1]))
        calendar.append(_scan(lambda k, e=earlier, lt=later: lt.total_variance(k) - e.total_variance(k),
                              overlap, step, "calendar", (i, i + 1), violations))
    return ArbitrageCheck(butterfly, np.array(calendar), tuple(violations))


def _scan(value: Callable[[np.ndarray], np.ndarray], k_range: tuple[float, float], step: float, kind: str,
          slices: tuple[int, ...], violations: list[Violation]) -> float:
    """Minimum of ``value`` on a grid over ``k_range`` (NaN if empty); appends each negative stretch."""
    lo, hi = k_range
    if hi < lo:
        return math.nan
    grid = np.linspace(lo, hi, max(math.ceil((hi - lo) / step), 1) + 1)
    values = value(grid)
    bad = np.flatnonzero(values < -_TOLERANCE)
    for run in np.split(bad, np.flatnonzero(np.diff(bad) > 1) + 1) if bad.size else []:
        worst = run[values[run].argmin()]
        violations.append(Violation(kind, slices, float(grid[run[0]]), float(grid[run[-1]]), float(grid[worst]),
                                    float(values[worst])))
    return float(values.min())


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


def surface_features(chain: pl.DataFrame, arbitrage_margin: float = 0.0) -> pl.DataFrame:
    """Per (date, symbol): ``atm_iv`` (ATM-forward iv of the nearest expiry), ``atm_term_slope``
    (d ATM iv / d tau, by least squares across expiries), ``rr25`` and ``bf25`` (nearest expiry, strikes
    of forward delta +0.25 and -0.25 read off the fitted smile: call iv minus put iv, and the smile
    strangle, their mean minus ATM iv; not the broker strangle priced at one vol), ``svi_rmse`` (worst
    slice fit, in total variance) and ``arbitrage_free`` (1.0 when the fitted slices pass the butterfly
    and calendar checks over their quoted log-moneyness widened by ``arbitrage_margin``).

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
        check = check_static_arbitrage(slices, k_ranges, arbitrage_margin)
        rows.append((day, symbol, atm[0], slope, iv_at[0] - iv_at[1], 0.5 * sum(iv_at) - atm[0], rmse,
                     float(check.butterfly_free and check.calendar_free)))
    return pl.DataFrame(rows, orient="row", schema={
        "date": pl.Date, "symbol": pl.String, "atm_iv": pl.Float64, "atm_term_slope": pl.Float64,
        "rr25": pl.Float64, "bf25": pl.Float64, "svi_rmse": pl.Float64, "arbitrage_free": pl.Float64})
