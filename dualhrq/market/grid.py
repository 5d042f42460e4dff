"""Intraday bars with quotes as (time x symbol) arrays: the layout the vectorised replay steps through.

Rows of the bar frame (the intraday data contract: ``ts`` bar start, OHLC,
volume, trades, the closing quote ``bid``/``ask`` with sizes and the LULD
tier) are scattered onto the union of bar times, so one time step updates
every symbol at once with numpy. A symbol without a bar at a step holds NaN
prices and no trades. Each bar's quote is stamped at the bar's close
(``ts + bar``): that is the moment orders decided on the bar meet the book.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import numpy as np
import polars as pl

from dualhrq.errors import DataError
from dualhrq.market.rules import MARKET_OPEN

QUOTE_COLUMNS: dict[str, pl.DataType] = {
    "ts": pl.Datetime("us"), "symbol": pl.String(),
    "open": pl.Float64(), "high": pl.Float64(), "low": pl.Float64(), "close": pl.Float64(),
    "volume": pl.Float64(), "trades": pl.Int64(), "bid": pl.Float64(), "ask": pl.Float64(),
    "bid_size": pl.Float64(), "ask_size": pl.Float64(), "luld_tier": pl.Int8(),
}
VALUES = ("open", "high", "low", "close", "volume", "trades", "bid", "ask", "bid_size", "ask_size")
US = np.timedelta64(1, "us")
EARLY_CLOSE = time(13, 0)
FULL_CLOSE = time(16, 0)


@dataclass(frozen=True)
class MarketGrid:
    """Per-step times, per-day sessions and (step, symbol) arrays of one replay.

    ``time_us`` is the quote time (bar close) in microseconds since the epoch;
    ``prev_close`` the last close before each day in the grid (carried
    over days without a bar; NaN on the first day); ``session_close`` is 16:00, or 13:00 on a day
    whose last bar starts before 13:00 (an early close: the contract's bars
    run 09:30..12:59 on those days).
    """

    symbols: tuple[str, ...]
    bar_ts: np.ndarray  # (T,) datetime64[us]
    time_us: np.ndarray  # (T,) int64
    day: np.ndarray  # (T,) int, index into days
    days: tuple[date, ...]
    day_start: np.ndarray  # (D + 1,) first step of each day, then T
    session_open_us: np.ndarray  # (D,)
    session_close_us: np.ndarray  # (D,)
    tier: np.ndarray  # (N,) int8
    prev_close: np.ndarray  # (D, N)
    arrays: dict[str, np.ndarray]  # VALUES -> (T, N) float64

    def __getattr__(self, name: str) -> np.ndarray:
        arrays = self.__dict__.get("arrays", {})
        if name in arrays:
            return arrays[name]
        raise AttributeError(name)

    @property
    def shape(self) -> tuple[int, int]:
        return self.bar_ts.size, len(self.symbols)

    @property
    def mid(self) -> np.ndarray:
        return 0.5 * (self.arrays["bid"] + self.arrays["ask"])


def _us(day: date, at: time) -> int:
    return int(np.datetime64(datetime.combine(day, at), "us").astype(np.int64))


def validate_quotes(frame: pl.DataFrame | pl.LazyFrame, source: str = "market bars") -> pl.DataFrame:
    """Check the intraday contract's columns and values; return the frame sorted by (symbol, ts)."""
    df = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    missing = [c for c in QUOTE_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{source}: missing columns {missing}; the strict simulator needs intraday bars with "
                        f"quotes ({list(QUOTE_COLUMNS)}). Fix: use data=synthetic_intraday or bars with quotes.")
    try:
        df = df.select(pl.col(c).cast(t, strict=True) for c, t in QUOTE_COLUMNS.items())
    except pl.exceptions.PolarsError as err:
        raise DataError(f"{source}: a column has the wrong type ({err}). Fix: cast to {QUOTE_COLUMNS}.") from None
    if df.height == 0:
        raise DataError(f"{source}: no rows. Fix: replay a period with bars.")
    nulls = [c for c in QUOTE_COLUMNS if df[c].null_count()]
    if nulls:
        raise DataError(f"{source}: null values in {nulls}. Fix: drop or fill those bars.")
    prices = ("open", "high", "low", "close", "bid", "ask")
    bad = [c for c in prices if not bool((df[c] > 0).all())]
    if bad:
        raise DataError(f"{source}: non-positive or NaN prices in {bad}. Fix: clean the bars.")
    if bool((df["bid"] > df["ask"]).any()):
        raise DataError(f"{source}: crossed quotes (bid > ask). Fix: drop or repair those quotes.")
    if not bool(df["luld_tier"].is_in([1, 2]).all()):
        raise DataError(f"{source}: luld_tier must be 1 or 2. Fix: set the tier of every symbol.")
    df = df.sort("symbol", "ts")
    repeated = (pl.col("symbol") == pl.col("symbol").shift(1)) & (pl.col("ts") == pl.col("ts").shift(1))
    if df.select(repeated.any()).item():
        raise DataError(f"{source}: duplicate (symbol, ts) bars. Fix: keep one bar per symbol and minute.")
    return df


def build_grid(frame: pl.DataFrame | pl.LazyFrame, bar: timedelta = timedelta(minutes=1),
               source: str = "market bars") -> MarketGrid:
    """Validate intraday bars and lay them out as (time, symbol) arrays."""
    df = validate_quotes(frame, source)
    symbols = tuple(df["symbol"].unique(maintain_order=True).to_list())  # sorted: the frame is
    bar_ts = df["ts"].unique().sort().to_numpy()
    shape = (bar_ts.size, len(symbols))
    complete = df.height == shape[0] * shape[1]  # every symbol has a bar at every time: a plain reshape
    if not complete:
        idx = df.select(t=pl.col("ts").rank("dense") - 1, s=pl.col("symbol").rank("dense") - 1)
        t_idx, s_idx = idx["t"].to_numpy(), idx["s"].to_numpy()
    arrays = {}
    for name in VALUES:
        values = df[name].cast(pl.Float64).to_numpy()
        if complete:
            arrays[name] = np.ascontiguousarray(values.reshape(shape[1], shape[0]).T)
        else:
            arrays[name] = np.full(shape, np.nan if name != "trades" else 0.0)
            arrays[name][t_idx, s_idx] = values
    tiers = df.group_by("symbol").agg(pl.col("luld_tier").first()).sort("symbol")["luld_tier"].to_numpy()
    day_of = bar_ts.astype("datetime64[D]")
    day_values, day_start, day_index = np.unique(day_of, return_index=True, return_inverse=True)
    days = tuple(d.astype(date) for d in day_values)
    close = arrays["close"]
    last_close = np.full((len(days), len(symbols)), np.nan)
    ends = np.r_[day_start[1:], bar_ts.size]
    for d, (lo, hi) in enumerate(zip(day_start, ends, strict=True)):
        block = close[lo:hi]
        seen = np.isfinite(block)
        last = np.where(seen.any(axis=0), hi - lo - 1 - np.argmax(seen[::-1], axis=0), 0)
        last_close[d] = np.where(seen.any(axis=0), block[last, np.arange(len(symbols))], np.nan)
    last_close = pl.DataFrame(last_close).select(pl.all().fill_nan(None).forward_fill()).to_numpy()
    prev_close = np.vstack([np.full((1, len(symbols)), np.nan), last_close[:-1]])
    last_start = [bar_ts[e - 1].astype(datetime).time() for e in ends]
    closes = [EARLY_CLOSE if t < EARLY_CLOSE else FULL_CLOSE for t in last_start]
    time_us = (bar_ts + np.timedelta64(int(bar.total_seconds() * 1e6), "us")).astype(np.int64)
    return MarketGrid(
        symbols=symbols, bar_ts=bar_ts, time_us=time_us, day=day_index.astype(np.int64), days=days,
        day_start=np.r_[day_start, bar_ts.size].astype(np.int64),
        session_open_us=np.array([_us(d, MARKET_OPEN) for d in days], dtype=np.int64),
        session_close_us=np.array([_us(d, c) for d, c in zip(days, closes, strict=True)], dtype=np.int64),
        tier=tiers.astype(np.int8), prev_close=prev_close, arrays=arrays,
    )
