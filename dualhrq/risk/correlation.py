"""Correlation regime monitor: a fast and a slow exponentially weighted correlation of the book's assets,
and a flag when they part.

Diversification fails when correlations jump together (the "correlation
breakdown" of crises, Longin & Solnik 2001); a fast EWMA estimate reacts
within days while a slow one keeps the calm-period level, so their gap in
the mean pairwise correlation is an early, point-in-time regime signal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import polars as pl
from scipy.signal import lfilter

from dualhrq.config import Positive, PositiveInt, between, check_fields, check_value, invalid
from dualhrq.errors import DataError

__all__ = ["CorrelationMonitor", "ewma_correlation"]


def ewma_correlation(returns: np.ndarray, halflife: float) -> np.ndarray:
    """Point-in-time EWMA correlation matrices, shape (T, K, K), of a (T, K) panel of returns.

    The RiskMetrics (J.P. Morgan 1996) recursion on zero-mean returns,
    ``S_t = lam S_{t-1} + (1 - lam) r_t r_t'`` from ``S_{-1} = 0`` with
    ``lam = 0.5 ** (1 / halflife)``; row ``t`` uses returns through ``t`` only.
    The start-up scale of ``S`` cancels in the correlation
    ``S_ij / sqrt(S_ii S_jj)``, so the first rows are the bias-corrected
    estimate; they rest on few returns (the first on one) and are noisy.
    A pair is NaN while either asset has had no non-zero return.
    """
    check_value("halflife", halflife, Positive)
    r = np.asarray(returns, dtype=float)
    if r.ndim != 2 or r.shape[1] < 2 or not np.isfinite(r).all():
        raise DataError(f"returns must be a finite (T, K) panel with K >= 2 assets, got shape {r.shape}"
                        f"{' with NaN/inf' if r.size and not np.isfinite(r).all() else ''}.")
    lam = 0.5 ** (1.0 / halflife)
    outer = r[:, :, None] * r[:, None, :]
    cov = lfilter([1.0 - lam], [1.0, -lam], outer, axis=0)
    sd = np.sqrt(np.einsum("tii->ti", cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / (sd[:, :, None] * sd[:, None, :])
    return np.clip(corr, -1.0, 1.0)


@dataclass(frozen=True)
class CorrelationMonitor:
    """Fast and slow EWMA mean pairwise correlation of a panel, and a ``shift`` flag when they part.

    ``run(frame)`` takes ``ts`` plus one return column per asset (two or
    more, no nulls) and returns ``ts, fast, slow, shift``: the mean of the
    off-diagonal correlations under each half-life (days) and whether
    ``|fast - slow| > threshold``. The first ``warmup`` rows (default: the slow
    half-life, rounded up) are null: the estimates have too little history.
    """

    fast_halflife: Positive = 10.0
    slow_halflife: Positive = 120.0
    threshold: Annotated[float, between(0, 2, lo_open=True)] = 0.2
    warmup: PositiveInt | None = None

    def __post_init__(self) -> None:
        check_fields(self)
        if self.fast_halflife >= self.slow_halflife:
            raise invalid("fast_halflife", self.fast_halflife, f"below slow_halflife ({self.slow_halflife})")

    def run(self, frame: pl.DataFrame) -> pl.DataFrame:
        assets = [c for c in frame.columns if c != "ts"]
        if "ts" not in frame.columns or len(assets) < 2:
            raise DataError(f"frame must have a ts column and two or more return columns, got {frame.columns}.")
        if frame.select(pl.col(assets).null_count()).sum_horizontal().item():
            raise DataError("frame: return columns hold nulls. Fix: drop the days where an asset has no return.")
        if frame["ts"].null_count() or not frame["ts"].is_sorted() or frame["ts"].n_unique() != frame.height:
            raise DataError("frame: ts must be strictly increasing. Fix: sort by ts and drop duplicate days.")
        r = frame.select(assets).to_numpy().astype(float)
        fast, slow = (_mean_pairwise(ewma_correlation(r, h)) for h in (self.fast_halflife, self.slow_halflife))
        warmup = self.warmup if self.warmup is not None else math.ceil(self.slow_halflife)
        known = np.arange(len(r)) >= warmup
        out = pl.DataFrame({"ts": frame["ts"], "fast": np.where(known, fast, np.nan),
                            "slow": np.where(known, slow, np.nan)}).fill_nan(None)
        return out.with_columns(shift=(pl.col("fast") - pl.col("slow")).abs() > self.threshold)


def _mean_pairwise(corr: np.ndarray) -> np.ndarray:
    """Mean of the off-diagonal entries of each (K, K) matrix in a (T, K, K) stack."""
    upper = np.triu_indices(corr.shape[1], k=1)
    return corr[:, upper[0], upper[1]].mean(axis=1)
