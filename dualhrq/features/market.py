"""Market-relative features: a stock against its index and against the other stocks of the same day.

Functions return polars expressions. Per-symbol ones (beta, correlation)
are wrapped in ``.over("symbol")`` by the engine and read the index's return
joined onto each bar by date; per-day ones (dispersion) are evaluated
``.over("ts")`` across symbols. All windows trail: bars <= t only.
"""

from __future__ import annotations

import polars as pl


def beta(ret: pl.Expr, market_ret: pl.Expr, window: int) -> pl.Expr:
    """OLS slope of the stock's return on the market's over the last ``window`` bars; 0 when the market is flat."""
    var = market_ret.rolling_var(window)
    return pl.when(var == 0).then(0.0).otherwise(pl.rolling_cov(ret, market_ret, window_size=window) / var)


def correlation(ret: pl.Expr, market_ret: pl.Expr, window: int) -> pl.Expr:
    """Pearson correlation of the stock's and the market's returns over the last ``window`` bars."""
    return pl.rolling_corr(ret, market_ret, window_size=window).fill_nan(0.0)


def dispersion(ret: pl.Expr, by: str = "ts") -> pl.Expr:
    """Cross-sectional standard deviation of the returns sharing ``by`` (ddof=1): how much stocks disagree."""
    return ret.std().over(by)
