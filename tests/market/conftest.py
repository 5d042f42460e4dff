"""Hand-built intraday bars that follow the intraday data contract."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl


def bars(day: str, closes, symbol: str = "AAA", start: str = "09:30", step_s: int = 60, tier: int = 1,
         spread: float = 0.02, trades=10, volume=10_000.0, bid=None, ask=None, low=None,
         flat: bool = False) -> pl.DataFrame:
    """One symbol's bars from a close path.

    open = previous close (or = close when ``flat``), high/low span open and
    close unless ``low`` is given, quotes ``spread`` wide around the close
    unless ``bid``/``ask`` are given; scalars are broadcast.
    """
    closes = np.asarray(closes, dtype=float)
    n = closes.size
    t0 = datetime.fromisoformat(f"{day}T{start}")
    ts = [t0 + timedelta(seconds=step_s * i) for i in range(n)]
    opens = closes.copy() if flat else np.r_[closes[0], closes[:-1]]
    lows = np.minimum(opens, closes) if low is None else np.broadcast_to(np.asarray(low, dtype=float), n)
    bid = closes - spread / 2 if bid is None else np.broadcast_to(np.asarray(bid, dtype=float), n)
    ask = closes + spread / 2 if ask is None else np.broadcast_to(np.asarray(ask, dtype=float), n)
    return pl.DataFrame({
        "ts": pl.Series(ts, dtype=pl.Datetime("us")), "symbol": symbol, "open": opens,
        "high": np.maximum(opens, closes), "low": np.minimum(lows, closes), "close": closes,
        "volume": np.broadcast_to(np.asarray(volume, dtype=float), n).copy(),
        "trades": np.broadcast_to(np.asarray(trades, dtype=np.int64), n).copy(), "bid": np.array(bid),
        "ask": np.array(ask), "bid_size": np.full(n, 100.0), "ask_size": np.full(n, 100.0),
        "luld_tier": np.full(n, tier, dtype=np.int8),
    })


def with_prior_close(frame: pl.DataFrame, prior_day: str, close: float, **kw) -> pl.DataFrame:
    """Prepend one bar at 15:59 of ``prior_day`` closing at ``close`` (the previous close of the next day)."""
    symbol = frame["symbol"][0]
    tier = int(frame["luld_tier"][0])
    return pl.concat([bars(prior_day, [close], symbol=symbol, start="15:59", tier=tier, **kw), frame])
