"""Generation rate of the SYNTHETIC intraday market: in memory, and written to parquet.

    python benchmarks/synthetic_generation.py --symbols 500 --days 252 --out /tmp/dualhrq_bench/bars

Two timings, each in a fresh process with its own peak RSS: ``generate``
consumes the lazy ``generate_bars`` scan (one symbol in memory at a time,
nothing kept), ``write`` runs ``write_bars`` (generate + write a
``symbol=<name>/bars.parquet`` tree, the input of feature_throughput.py).
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import time
from pathlib import Path


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _generate(symbols: int, days: int, seed: int) -> dict[str, float]:
    import polars as pl

    from dualhrq.data.synthetic import generate_bars

    start = time.perf_counter()
    rows = generate_bars(n_symbols=symbols, n_days=days, seed=seed).select(pl.len()).collect().item()
    return {"seconds": time.perf_counter() - start, "rows": rows, "peak_rss_gb": _peak_gb()}


def _write(out: str, symbols: int, days: int, seed: int) -> dict[str, float]:
    from dualhrq.data.synthetic import write_bars

    start = time.perf_counter()
    scan = write_bars(out, n_symbols=symbols, n_days=days, seed=seed)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows": scan.select("ts").collect().height, "peak_rss_gb": _peak_gb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--days", type=int, default=252)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="/tmp/dualhrq_bench/bars")
    args = parser.parse_args()

    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        gen = pool.apply(_generate, (args.symbols, args.days, args.seed))
    with context.Pool(1) as pool:
        wrote = pool.apply(_write, (str(out), args.symbols, args.days, args.seed))
    size = sum(f.stat().st_size for f in out.rglob("*.parquet"))
    print(json.dumps({
        "benchmark": "synthetic_generation", "data": "SYNTHETIC", "symbols": args.symbols, "days": args.days,
        "rows": gen["rows"], "generate_seconds": round(gen["seconds"], 2),
        "generate_rows_per_s": round(gen["rows"] / gen["seconds"]),
        "generate_peak_rss_gb": round(gen["peak_rss_gb"], 3),
        "write_seconds": round(wrote["seconds"], 2), "write_rows_per_s": round(wrote["rows"] / wrote["seconds"]),
        "write_peak_rss_gb": round(wrote["peak_rss_gb"], 3), "parquet_gb": round(size / 2**30, 3),
        "cpus": os.cpu_count(), "out": str(out),
    }))


if __name__ == "__main__":
    main()
