"""Hand-built intraday bars that follow the intraday data contract."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl


def bars(day: str, closes, symbol: str = "AAA", start: str = "09:30", step_s: int = 60, tier: int = 1,
         spread: float = 0.02, trades: int = 10, volume: float = 10_000.0, bid=None, ask=None,
         low=None) -> pl.DataFrame:
    """One symbol's bars from a close path: open = previous close, quotes around the close."""
    closes = np.asarray(closes, dtype=float)
    t0 = datetime.fromisoformat(f"{day}T{start}")
    ts = [t0 + timedelta(seconds=step_s * i) for i in range(closes.size)]
    opens = np.r_[closes[0], closes[:-1]]
    lows = np.minimum(opens, closes) if low is None else np.asarray(low, dtype=float)
    bid = closes - spread / 2 if bid is None else np.asarray(bid, dtype=float)
    ask = closes + spread / 2 if ask is None else np.asarray(ask, dtype=float)
    return pl.DataFrame({
        "ts": pl.Series(ts, dtype=pl.Datetime("us")), "symbol": symbol, "open": opens,
        "high": np.maximum(opens, closes), "low": lows, "close": closes, "volume": np.full(closes.size, volume),
        "trades": np.full(closes.size, trades, dtype=np.int64), "bid": bid, "ask": ask,
        "bid_size": np.full(closes.size, 100.0), "ask_size": np.full(closes.size, 100.0),
        "luld_tier": np.full(closes.size, tier, dtype=np.int8),
    })


def session(day: str, n: int = 390, price: float = 50.0, **kw) -> pl.DataFrame:
    """A flat full session of ``n`` one-minute bars."""
    return bars(day, np.full(n, price), **kw)
