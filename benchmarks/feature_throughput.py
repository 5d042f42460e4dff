"""Throughput of every columnar intraday feature on 1-minute bars, polars against pandas.

    python benchmarks/synthetic_generation.py --symbols 500 --days 252 --out /tmp/dualhrq_bench/bars
    python benchmarks/feature_throughput.py --bars /tmp/dualhrq_bench/bars --pandas-symbols 20

1. polars, full size: ``write_intraday_features`` over the whole SYNTHETIC tree
   (500 symbols x 252 days = 49.1M bars), chunked by trading days, written
   to parquet; rows/s and the peak RSS of the process that ran it.
2. polars against pandas on the first ``--pandas-symbols`` symbols, in
   memory: the same features written the straightforward pandas way
   (``groupby("symbol").rolling``), timed in the same run, their values
   compared (``max_abs_diff``). pandas runs on a subset because its
   intermediates for 49M rows would not fit the memory budget.

The Markov-switching ``vol_regime`` (a model fit per symbol, not a columnar
feature) is left out of both. Each step runs in a fresh process. Prints one
JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from dualhrq.features.engine import IntradayFeatureSpec, feature_names

SPEC = IntradayFeatureSpec(vol_regime=False, rule_state=False)  # the columnar query only


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _polars_full(bars: str, out: str, chunk_days: int) -> dict[str, float]:
    from dualhrq.features.batch import write_intraday_features

    scan = pl.scan_parquet(Path(bars) / "**" / "*.parquet")
    start = time.perf_counter()
    written = write_intraday_features(scan, SPEC, out, chunk_days=chunk_days)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows": written.select(pl.len()).collect().item(), "peak_rss_gb": _peak_gb()}


def _subset(bars: str, n_symbols: int) -> dict[str, float]:
    from dualhrq.features.engine import intraday_query

    files = sorted(Path(bars).glob("symbol=*/*.parquet"))[:n_symbols]
    frame = pl.concat([pl.read_parquet(f) for f in files]).sort("symbol", "ts")
    start = time.perf_counter()
    fast = intraday_query(frame.lazy(), SPEC).collect()
    polars_seconds = time.perf_counter() - start
    df = frame.to_pandas()
    start = time.perf_counter()
    slow = pandas_features(df, SPEC)
    pandas_seconds = time.perf_counter() - start
    names, _ = feature_names(SPEC)
    a = fast.select(names).to_numpy()
    b = slow[names].to_numpy()
    same_nulls = bool((np.isnan(a) == np.isnan(b)).all())
    diff = float(np.nanmax(np.abs(a - b)))
    return {"rows": frame.height, "polars_seconds": polars_seconds, "pandas_seconds": pandas_seconds,
            "max_abs_diff": diff, "same_nulls": same_nulls}


def pandas_features(df: pd.DataFrame, spec: IntradayFeatureSpec) -> pd.DataFrame:
    """The intraday features of ``engine.intraday_query``, one pandas groupby-rolling at a time."""
    s, m, lg, k = spec.short, spec.medium, spec.long, spec.tsrv_k
    out = pd.DataFrame(index=df.index)
    g = df.groupby("symbol", sort=False)

    def roll(x: pd.Series, w: int, how: str) -> pd.Series:
        return getattr(x.groupby(df["symbol"], sort=False).rolling(w), how)().reset_index(level=0, drop=True)

    def zscore(x: pd.Series, w: int) -> pd.Series:
        std = roll(x, w, "std")
        return ((x - roll(x, w, "mean")) / std).where(std != 0, np.where(std.isna(), np.nan, 0.0))

    c, o, h, low = df["close"], df["open"], df["high"], df["low"]
    prev = g["close"].shift(1)
    r = np.log(c / prev)
    traded = df["volume"].where(df["volume"] > 0).groupby(df["symbol"], sort=False).ffill()
    out["log_return"] = r
    for w in (s, m, lg):
        out[f"mom_{w}"] = np.log(c / g["close"].shift(w))
    out[f"meanrev_z_{m}"] = zscore(c, m)
    out[f"volume_z_{m}"] = zscore(np.log(traded), m)
    span = h - low
    out["close_location"] = ((2 * c - h - low) / span).where(span != 0, 0.0)
    true_range = pd.concat([h, prev], axis=1).max(axis=1) - pd.concat([low, prev], axis=1).min(axis=1)
    out[f"atr_{m}"] = roll(true_range, m, "mean") / c
    out["gap"] = np.log(o / prev)
    out["body"] = np.log(c / o)
    out[f"drawdown_{lg}"] = np.log(c / roll(c, lg, "max"))
    out[f"vol_ratio_{s}_{lg}"] = 0.5 * np.log((roll(r**2, s, "mean") + 1e-12) / (roll(r**2, lg, "mean") + 1e-12))
    typical = (h + low + c) / 3
    session = df["ts"].dt.date
    keys = [df["symbol"], session]
    vwap = (typical * df["volume"]).groupby(keys, sort=False).cumsum() / df["volume"].groupby(keys, sort=False).cumsum()
    out["vwap_deviation"] = np.log(c / vwap)
    pb, qb, pa, qa = df["bid"], df["bid_size"], df["ask"], df["ask_size"]
    depth = qb + qa
    imbalance = ((qb - qa) / depth).where(depth > 0, 0.0)
    ppb, pqb, ppa, pqa = (g[x].shift(1) for x in ("bid", "bid_size", "ask", "ask_size"))
    event = (qb.where(pb >= ppb, 0.0) - pqb.where(pb <= ppb, 0.0) - qa.where(pa <= ppa, 0.0)
             + pqa.where(pa >= ppa, 0.0)).where(ppb.notna())
    for w in (s, m):
        out[f"depth_imbalance_{w}"] = roll(imbalance, w, "mean")
        flow, average_depth = roll(event, w, "sum"), roll(depth / 2, w, "mean")
        out[f"ofi_{w}"] = (flow / average_depth).where(average_depth > 0, np.where(flow.isna(), np.nan, 0.0))
    change = np.sign(g["close"].diff())
    moves = (change != 0).astype(float).where(change.notna())
    ups = (change > 0).astype(float).where(change.notna())
    n_moves = roll(moves, m, "sum")
    out[f"uptick_share_{m}"] = (roll(ups, m, "sum") / n_moves - 0.5).where(n_moves > 0, np.where(
        n_moves.isna(), np.nan, 0.0))
    out[f"zero_return_share_{m}"] = roll((change == 0).astype(float).where(change.notna()), m, "mean")
    out["session_progress"] = (df["ts"].dt.hour * 60 + df["ts"].dt.minute - 570) / 390
    spread = np.log(df["ask"] / df["bid"])
    out["spread"] = spread
    out[f"spread_z_{lg}"] = zscore(spread, lg)
    trades = df["trades"].astype(float)
    size = {w: roll(traded, w, "sum") / roll(trades, w, "sum").clip(lower=1) for w in (s, lg)}
    out[f"trade_size_ratio_{s}_{lg}"] = np.log(size[s] / size[lg])

    rv = roll(r**2, m, "sum")
    bpv = math.pi / 2 * roll(r.abs() * r.abs().groupby(df["symbol"], sort=False).shift(1), m, "sum")
    log_c = np.log(c)
    n_bar = (lg - k + 1) / k
    rv_avg = roll((log_c - g["close"].shift(k).pipe(np.log)) ** 2, lg - k + 1, "sum") / k
    rv_all = roll(r**2, lg, "sum")
    tsrv = ((rv_avg - n_bar / lg * rv_all) * lg / ((k - 1) * n_bar)).clip(lower=0)
    regime = {
        f"rvol_{m}": np.sqrt(rv / m),
        f"bpvol_{m}": np.sqrt(bpv / m),
        f"tsrv_vol_{lg}": np.sqrt(tsrv / lg),
        f"jump_share_{m}": ((rv - bpv).clip(lower=0) / rv).where(rv != 0, np.where(rv.isna(), np.nan, 0.0)),
        f"parkinson_{m}": np.sqrt(roll(np.log(h / low) ** 2 / (4 * math.log(2)), m, "mean").clip(lower=0)),
        f"garman_klass_{m}": np.sqrt(roll(0.5 * np.log(h / low) ** 2 - (2 * math.log(2) - 1) * np.log(c / o) ** 2,
                                          m, "mean").clip(lower=0)),
        f"rogers_satchell_{m}": np.sqrt(roll(np.log(h / c) * np.log(h / o) + np.log(low / c) * np.log(low / o),
                                             m, "mean").clip(lower=0)),
        f"amihud_{m}_{lg}": np.log(roll(r.abs() / (c * traded), m, "mean") / roll(r.abs() / (c * traded), lg, "mean")),
    }
    for name, values in regime.items():
        out[name] = values
    for name in (f"mom_{m}", "vwap_deviation", f"depth_imbalance_{m}", f"rvol_{m}"):
        x = out[name]
        by_ts = x.groupby(df["ts"], sort=False)
        count = by_ts.transform("count")
        ranked = (by_ts.rank(method="average") - 1) / (count - 1)
        out[f"rank_{name}"] = ranked.where(count > 1, np.where(x.isna(), np.nan, 0.5))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", default="/tmp/dualhrq_bench/bars", help="tree written by synthetic_generation.py")
    parser.add_argument("--pandas-symbols", type=int, default=20)
    parser.add_argument("--chunk-days", type=int, default=10)
    args = parser.parse_args()

    if not Path(args.bars).exists():
        raise SystemExit(f"{args.bars} does not exist; write it first with benchmarks/synthetic_generation.py")
    n_symbols = len(list(Path(args.bars).glob("symbol=*")))
    out = tempfile.mkdtemp(prefix="dualhrq_features_")
    context = multiprocessing.get_context("spawn")
    try:
        with context.Pool(1) as pool:
            full = pool.apply(_polars_full, (args.bars, out, args.chunk_days))
        with context.Pool(1) as pool:
            sub = pool.apply(_subset, (args.bars, args.pandas_symbols))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print(json.dumps({
        "benchmark": "feature_throughput", "data": "SYNTHETIC", "symbols": n_symbols, "rows": full["rows"],
        "features": len(feature_names(SPEC)[0]), "polars_seconds": round(full["seconds"], 2),
        "polars_rows_per_s": round(full["rows"] / full["seconds"]), "polars_peak_rss_gb": round(full["peak_rss_gb"], 3),
        "chunk_days": args.chunk_days, "subset_symbols": args.pandas_symbols, "subset_rows": sub["rows"],
        "subset_polars_seconds": round(sub["polars_seconds"], 3),
        "subset_pandas_seconds": round(sub["pandas_seconds"], 3),
        "speedup_vs_pandas": round(sub["pandas_seconds"] / sub["polars_seconds"], 1),
        "subset_max_abs_diff": sub["max_abs_diff"], "subset_same_nulls": sub["same_nulls"], "cpus": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
