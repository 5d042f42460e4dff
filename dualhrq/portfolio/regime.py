"""A point-in-time market regime for allocation: low_vol, high_vol or crisis on each day.

The day's regime compares the market's trailing realized volatility (the
standard deviation of the last ``window`` daily returns, ddof=1) with the
quantiles of its own history from the first day up to and including that day,
never later: ``high_vol`` above the expanding ``high_quantile`` (the median by
default), ``crisis`` above the expanding ``crisis_quantile`` (the 95th
percentile) or on a day whose VIX close is at least ``vix_crisis`` (40, a
close seen only in acute stress such as late 2008, August 2011 and March
2020), ``low_vol`` otherwise. Days before ``min_history`` volatility readings
exist have no regime (null): a quantile of a few readings says little. Only
the day's own VIX close counts (a day without one is judged by volatility
alone), so a stale VIX never keeps a crisis alive. Readings that tie up to
rounding (a perfectly steady volatility) may fall either side of a quantile.

The expanding quantiles are polars' ``rolling_quantile`` over a window as long
as the series (linear interpolation, as ``numpy.quantile``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import polars as pl

from dualhrq.config import Positive, at_least, between, check_fields, invalid
from dualhrq.errors import DataError

__all__ = ["REGIMES", "VolatilityRegime"]

REGIMES = ("low_vol", "high_vol", "crisis")
_OPEN_UNIT = Annotated[float, between(0, 1, lo_open=True, hi_open=True)]


@dataclass(frozen=True)
class VolatilityRegime:
    """Thresholds of the three-state regime (see the module docstring)."""

    window: Annotated[int, at_least(2)] = 20
    high_quantile: _OPEN_UNIT = 0.5
    crisis_quantile: _OPEN_UNIT = 0.95
    vix_crisis: Positive = 40.0
    min_history: Annotated[int, at_least(1)] = 60

    def __post_init__(self) -> None:
        check_fields(self)
        if self.crisis_quantile <= self.high_quantile:
            raise invalid("crisis_quantile", self.crisis_quantile, f"above high_quantile ({self.high_quantile})")

    def classify(self, market: pl.DataFrame, vix: pl.DataFrame | None = None) -> pl.DataFrame:
        """``(ts, regime)`` for each day of ``market`` (``ts`` and ``ret``, the daily market return);
        ``vix`` (``ts``, ``vix``: daily closes) adds the VIX crisis rule."""
        frame = _series(market, "market", "ret")
        if vix is not None:
            frame = frame.join(_series(vix, "vix", "vix"), on="ts", how="left")
        n = frame.height
        vol = pl.col("ret").rolling_std(self.window, min_samples=self.window)

        def expanding(q: float) -> pl.Expr:
            return pl.col("vol").rolling_quantile(q, interpolation="linear", window_size=n,
                                                  min_samples=self.min_history)

        crisis = pl.col("vol") > pl.col("crisis_level")
        if vix is not None:
            crisis = crisis | (pl.col("vix") >= self.vix_crisis).fill_null(False)
        return (frame.with_columns(vol=vol)
                .with_columns(high_level=expanding(self.high_quantile), crisis_level=expanding(self.crisis_quantile))
                .select("ts", regime=pl.when(pl.col("crisis_level").is_null()).then(None)
                        .when(crisis).then(pl.lit("crisis"))
                        .when(pl.col("vol") > pl.col("high_level")).then(pl.lit("high_vol"))
                        .otherwise(pl.lit("low_vol"))))


def _series(frame: pl.DataFrame, name: str, column: str) -> pl.DataFrame:
    """``frame``'s ``ts`` (as Datetime("us"), strictly increasing) and finite ``column``, checked."""
    missing = [c for c in ("ts", column) if c not in frame.columns]
    if missing:
        raise DataError(f"{name} lacks columns {missing}; it needs ts and {column}.")
    if not isinstance(frame.schema["ts"], pl.Datetime | pl.Date):
        raise DataError(f"{name}.ts must be a date or datetime column, got {frame.schema['ts']}.")
    out = frame.select(pl.col("ts").cast(pl.Datetime("us")), pl.col(column).cast(pl.Float64))
    steps = out["ts"].diff().drop_nulls().dt.total_microseconds()
    if out.height == 0 or out["ts"].null_count() or not (steps > 0).all():
        raise DataError(f"{name}.ts must be non-null and strictly increasing (sorted, no duplicates). "
                        "Fix: sort by ts and drop repeated days.")
    values = out[column]
    if values.null_count() or not values.is_finite().all():
        raise DataError(f"{name}.{column} holds null, NaN or infinite values. Fix: drop those days.")
    return out
