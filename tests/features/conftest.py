"""Random but internally consistent OHLCV bars for feature tests."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest


@pytest.fixture
def bars() -> pl.DataFrame:
    """Two symbols of 150 random-walk daily bars; open and close inside [low, high]."""
    n, rng = 150, np.random.default_rng(0)
    frames = []
    for symbol in ("AAA", "BBB"):
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        open_ = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0, 0.003, n))
        high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.005, n)))
        low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.005, n)))
        frames.append(
            pl.DataFrame(
                {
                    "ts": [datetime(2015, 1, 1) + timedelta(days=i) for i in range(n)],
                    "symbol": symbol,
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": rng.lognormal(12, 0.5, n),
                }
            )
        )
    return pl.concat(frames)
