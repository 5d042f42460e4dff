"""Headline figures of a periodic return series: the annualised Sharpe ratio and the maximum drawdown.

Both take 1-D arrays of periodic simple returns (daily by default). The
statistics that correct them for luck and data snooping live in
:mod:`dualhrq.validation.statistics`.
"""

from __future__ import annotations

import math

import numpy as np

from dualhrq.errors import ConfigError, DataError

__all__ = ["checked_returns", "max_drawdown", "per_period_sharpe", "sharpe_ratio"]


def sharpe_ratio(returns: np.ndarray, periods_per_year: int = 252) -> float:
    """Annualised Sharpe ratio, ``mean / std(ddof=1) * sqrt(periods_per_year)``; nan for constant returns."""
    if isinstance(periods_per_year, bool) or not isinstance(periods_per_year, int) or periods_per_year < 1:
        raise ConfigError(f"periods_per_year must be a positive integer, got {periods_per_year!r}.")
    return per_period_sharpe(checked_returns(returns)) * math.sqrt(periods_per_year)


def max_drawdown(returns: np.ndarray) -> float:
    """Largest peak-to-trough loss of the compounded equity curve, as a positive fraction.

    The curve starts at 1 before the first return, so an initial loss counts.
    """
    r = checked_returns(returns, min_len=1)
    if (r < -1).any():
        raise DataError("simple returns below -1 (losing over 100%) are impossible; check the return series.")
    equity = np.cumprod(np.r_[1.0, 1.0 + r])
    return float(np.max(1.0 - equity / np.maximum.accumulate(equity)))


def checked_returns(returns: np.ndarray, name: str = "returns", min_len: int = 2) -> np.ndarray:
    """``returns`` as a 1-D float array of at least ``min_len`` finite values, else a DataError naming ``name``."""
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1 or r.size < min_len or not np.isfinite(r).all():
        raise DataError(
            f"{name} must be a 1-D array of at least {min_len} finite values, got shape {r.shape}"
            f"{' with NaN/inf' if r.size and not np.isfinite(r).all() else ''}."
        )
    return r


def per_period_sharpe(r: np.ndarray) -> float:
    """Mean over standard deviation (ddof=1) of a checked series, not annualised; nan for constant returns."""
    if np.ptp(r) == 0:
        return math.nan
    return float(r.mean() / r.std(ddof=1))
