"""Pattern features: trend, stretch, candle shape and participation.

Each function returns a polars expression over one symbol's bars in time
order; the engine wraps it in ``.over("symbol")``. Every value is a log
ratio, a z-score or a bounded fraction, so no price level or volume scale
leaks into the model, and all windows trail (bars <= t only).
"""

from __future__ import annotations

import polars as pl


def momentum(close: pl.Expr, horizon: int) -> pl.Expr:
    """ln(C_t / C_{t-horizon}): the log return over the last ``horizon`` bars."""
    return (close / close.shift(horizon)).log()


def zscore(x: pl.Expr, window: int) -> pl.Expr:
    """(x_t - rolling mean) / rolling std (ddof=1) over ``window`` bars; 0 if flat."""
    std = x.rolling_std(window)
    return pl.when(std == 0).then(0.0).otherwise((x - x.rolling_mean(window)) / std)


def close_location(high: pl.Expr, low: pl.Expr, close: pl.Expr) -> pl.Expr:
    """(2C - H - L) / (H - L): -1 at the low, +1 at the high, 0 for a flat bar."""
    span = high - low
    return pl.when(span == 0).then(0.0).otherwise((2 * close - high - low) / span)


def average_true_range(high: pl.Expr, low: pl.Expr, close: pl.Expr, window: int) -> pl.Expr:
    """Mean true range over ``window`` bars as a fraction of the current close.

    True range = max(H, C_{t-1}) - min(L, C_{t-1}), so overnight gaps count.
    """
    prev = close.shift(1)
    true_range = pl.max_horizontal(high, prev) - pl.min_horizontal(low, prev)
    return true_range.rolling_mean(window) / close


def gap(open_: pl.Expr, close: pl.Expr) -> pl.Expr:
    """ln(O_t / C_{t-1}): the move between bars."""
    return (open_ / close.shift(1)).log()


def body(open_: pl.Expr, close: pl.Expr) -> pl.Expr:
    """ln(C_t / O_t): the move within the bar."""
    return (close / open_).log()


def drawdown(close: pl.Expr, window: int) -> pl.Expr:
    """ln(C_t / max C over ``window`` bars) <= 0: distance below the recent peak."""
    return (close / close.rolling_max(window)).log()


_VARIANCE_FLOOR = 1e-12  # per bar, (0.01 bp)^2: keeps runs of unchanged prices finite


def volatility_ratio(ret: pl.Expr, short: int, long: int) -> pl.Expr:
    """ln of short- over long-window RMS return: > 0 when volatility is rising.

    Both mean squares get a floor of 1e-12, far below any real per-bar
    variance, so a run of unchanged minute prices gives a large negative
    number instead of -inf (or of the log of a rolling sum's rounding residue).
    """
    def mean_square(window: int) -> pl.Expr:
        return (ret**2).rolling_mean(window) + _VARIANCE_FLOOR

    return 0.5 * (mean_square(short) / mean_square(long)).log()
