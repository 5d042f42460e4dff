"""Headline figures of a book's periodic returns: Sharpe, Sortino, max drawdown, turnover, hit rate."""

from __future__ import annotations

import math

import numpy as np

from dualhrq.primitives.returns import max_drawdown, sharpe_ratio


def sortino_ratio(returns: np.ndarray, periods_per_year: int = 252) -> float:
    """Annualised mean over downside deviation ``sqrt(mean(min(r, 0)^2))`` (Sortino and Price 1994); nan without
    losses."""
    r = np.asarray(returns, dtype=float)
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2))) if r.size else 0.0
    return float(r.mean() / downside * math.sqrt(periods_per_year)) if downside > 0 else float("nan")


def hit_rate(returns: np.ndarray) -> float:
    """Share of periods with a non-zero return that gained; nan when no period moved."""
    r = np.asarray(returns, dtype=float)
    moved = r[r != 0]
    return float((moved > 0).mean()) if moved.size else float("nan")


def book_metrics(returns: np.ndarray, turnover: float, periods_per_year: int = 252) -> dict[str, float]:
    """The figures logged for every replay (``turnover``: traded value over capital per period)."""
    r = np.asarray(returns, dtype=float)
    sharpe = sharpe_ratio(r, periods_per_year) if r.size > 1 else float("nan")
    return {"sharpe": sharpe, "sortino": sortino_ratio(r, periods_per_year), "max_drawdown": max_drawdown(r),
            "turnover": float(turnover), "hit_rate": hit_rate(r), "total_return": float(np.prod(1 + r) - 1)}
