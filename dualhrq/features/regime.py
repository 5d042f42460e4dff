"""Regime features: how volatile, jumpy and illiquid a market is right now.

Each function returns a polars expression over one symbol's bars in time
order; the engine wraps it in ``.over("symbol")``. All windows trail, so a
value at bar t uses bars <= t only. Variances are per bar (not annualised),
so the same code serves daily and intraday bars.
"""

from __future__ import annotations

import math

import polars as pl

_MU1_SQ_INV = math.pi / 2  # mu_1^-2 with mu_1 = E|Z| = sqrt(2/pi), Z ~ N(0, 1)
_GK_CLOSE_WEIGHT = 2 * math.log(2) - 1


def log_return(close: pl.Expr) -> pl.Expr:
    """ln(C_t / C_{t-1}); null on a symbol's first bar."""
    return (close / close.shift(1)).log()


def traded_volume(volume: pl.Expr) -> pl.Expr:
    """Volume with zero-volume bars (feed gaps) carried from the last traded bar.

    Keeps log-volume and dollar-volume ratios finite without reaching ahead.
    """
    return pl.when(volume > 0).then(volume).forward_fill()


def realized_variance(ret: pl.Expr, window: int) -> pl.Expr:
    """RV_t = sum of r_i^2 over the last ``window`` returns."""
    return (ret**2).rolling_sum(window)


def two_scale_realized_variance(log_price: pl.Expr, window: int, k: int) -> pl.Expr:
    """TSRV over the last ``window`` returns with ``k`` subsamples (Zhang, Mykland & Ait-Sahalia 2005).

    Plain RV of noisy prices estimates ``2 n E[noise^2]`` rather than the
    integrated variance once the sampling is fine. TSRV averages the RVs of
    the ``k`` offset sparse grids (``RV_avg``, built from ``k``-bar returns)
    and subtracts the noise bias estimated by the all-returns RV (their
    eq. 55): ``RV_avg - nbar/n RV_all``, with ``nbar = (n - k + 1)/k``.

    The ``k``-bar returns cover the window's first and last ``k - 1`` returns
    less often than the rest, so that difference has mean ``(k - 1) nbar``
    times the per-return variance, not ``n`` times: their small-sample factor
    ``(1 - nbar/n)^-1`` leaves it ``(k - 1) nbar / (n - nbar)`` of the
    integrated variance (0.959 at ``n = 120, k = 5``). Scaling by
    ``n / ((k - 1) nbar)`` instead makes it unbiased at constant volatility
    with i.i.d. noise of any size; with varying volatility the window's
    first and last ``k - 1`` returns weigh less. Can be negative in small
    windows; callers clip it.
    """
    if not 1 < k < window:
        raise ValueError(f"TSRV needs 1 < k < window, got k={k}, window={window}")
    n_bar = (window - k + 1) / k
    rv_avg = ((log_price - log_price.shift(k)) ** 2).rolling_sum(window - k + 1) / k
    rv_all = (log_price.diff() ** 2).rolling_sum(window)
    return (rv_avg - n_bar / window * rv_all) * window / ((k - 1) * n_bar)


def bipower_variation(ret: pl.Expr, window: int) -> pl.Expr:
    """BPV_t = (pi/2) * sum of |r_i| |r_{i-1}| over the last ``window`` returns.

    Barndorff-Nielsen & Shephard (2004): the product of neighbours is immune to
    a single jump, so BPV estimates the continuous part of RV. ``window``
    products make it sum as many terms as ``realized_variance``.
    """
    return _MU1_SQ_INV * (ret.abs() * ret.abs().shift(1)).rolling_sum(window)


def jump_share(rv: pl.Expr, bpv: pl.Expr) -> pl.Expr:
    """max(RV - BPV, 0) / RV: the fraction of variance due to jumps (0 if RV = 0)."""
    return pl.when(rv == 0).then(0.0).otherwise((rv - bpv).clip(lower_bound=0) / rv)


def parkinson(high: pl.Expr, low: pl.Expr) -> pl.Expr:
    """Per-bar variance from the range: ln(H/L)^2 / (4 ln 2) (Parkinson 1980)."""
    return (high / low).log() ** 2 / (4 * math.log(2))


def garman_klass(open_: pl.Expr, high: pl.Expr, low: pl.Expr, close: pl.Expr) -> pl.Expr:
    """Per-bar variance 0.5 ln(H/L)^2 - (2 ln 2 - 1) ln(C/O)^2 (Garman & Klass 1980)."""
    return 0.5 * (high / low).log() ** 2 - _GK_CLOSE_WEIGHT * (close / open_).log() ** 2


def rogers_satchell(open_: pl.Expr, high: pl.Expr, low: pl.Expr, close: pl.Expr) -> pl.Expr:
    """Per-bar variance ln(H/C) ln(H/O) + ln(L/C) ln(L/O), unbiased under drift
    (Rogers & Satchell 1991)."""
    return (high / close).log() * (high / open_).log() + (low / close).log() * (low / open_).log()


def amihud_illiquidity(ret: pl.Expr, close: pl.Expr, volume: pl.Expr, window: int) -> pl.Expr:
    """Mean of |r_t| / (C_t * V_t) over ``window`` bars (Amihud 2002).

    Price impact per unit of dollar volume; its level depends on the asset's
    size, so the engine uses it only as a ratio of two windows.
    """
    return (ret.abs() / (close * volume)).rolling_mean(window)


def rolling_volatility(per_bar_variance: pl.Expr, window: int) -> pl.Expr:
    """sqrt of the rolling mean of a per-bar variance estimate.

    Clipped at 0: Garman-Klass and Rogers-Satchell can dip below zero on bars
    whose open or close lies outside the high-low range.
    """
    return per_bar_variance.rolling_mean(window).clip(lower_bound=0).sqrt()
