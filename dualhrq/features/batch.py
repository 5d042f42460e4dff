"""Intraday features for data larger than memory: chunks of trading days with a warm-up overlap.

Each chunk holds every symbol for ``chunk_days`` sessions plus the
``warmup_days`` sessions before them, so per-timestamp cross-sectional ranks
see all symbols and every trailing window is full at the chunk's first bar;
the warm-up rows are computed and dropped. Trailing windows never reach past
the warm-up (checked), so the result equals the in-memory
``compute_features`` up to floating-point summation order. Only one chunk is
in memory at a time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from dualhrq.errors import ConfigError
from dualhrq.features.engine import IntradayFeatureSpec, intraday_query

_SHORTEST_SESSION = 210  # minute bars in a 09:30-13:00 early-close session


def write_intraday_features(
    bars: pl.LazyFrame, spec: IntradayFeatureSpec, out_dir: str | Path, chunk_days: int = 10,
    warmup_days: int = 1,
) -> pl.LazyFrame:
    """Write ``ts, symbol, close`` and the columnar intraday features to ``out_dir/part-*.parquet``.

    ``bars`` must already satisfy the bar schema (e.g. a scan of a tree
    written by ``write_bars`` or checked by ``load_parquet``); rows may come
    in any order. Returns a scan of the written parts.
    """
    if spec.vol_regime or spec.options or spec.rule_state:
        raise ConfigError("spec.vol_regime, options and rule_state are computed outside the columnar query. "
                          "Fix: set them to false here and add them with compute_features.", field="spec")
    if spec.long + spec.tsrv_k > warmup_days * _SHORTEST_SESSION:
        raise ConfigError(f"warmup_days={warmup_days} holds fewer bars than the longest window (spec.long="
                          f"{spec.long} plus spec.tsrv_k={spec.tsrv_k}). Fix: raise warmup_days.", field="warmup_days")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    days = bars.select(pl.col("ts").dt.date().unique().sort()).collect().to_series().to_list()
    for i in range(0, len(days), chunk_days):
        first = _midnight(days[i])
        lo = _midnight(days[max(0, i - warmup_days)])
        hi = _midnight(days[min(i + chunk_days, len(days)) - 1]) + timedelta(days=1)
        chunk = bars.filter((pl.col("ts") >= lo) & (pl.col("ts") < hi)).sort("symbol", "ts")
        intraday_query(chunk, spec).filter(pl.col("ts") >= first).collect().write_parquet(
            out / f"part-{i // chunk_days:05d}.parquet")
    return pl.scan_parquet(out / "part-*.parquet")


def _midnight(day) -> datetime:
    return datetime(day.year, day.month, day.day)
