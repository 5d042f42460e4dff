"""Generation rate of the SYNTHETIC intraday market, written to parquet one symbol at a time.

    python benchmarks/synthetic_generation.py --symbols 500 --days 252 --out /tmp/dualhrq_bench/bars

Times ``write_bars`` (generate + write a ``symbol=<name>/bars.parquet`` tree)
in a fresh process and reports rows/s and that process's peak RSS. Prints
one JSON line.
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


def _generate(out: str, symbols: int, days: int, seed: int) -> dict[str, float]:
    from dualhrq.data.synthetic import write_bars

    start = time.perf_counter()
    scan = write_bars(out, n_symbols=symbols, n_days=days, seed=seed)
    seconds = time.perf_counter() - start
    rows = scan.select("ts").collect().height
    return {"seconds": seconds, "rows": rows, "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


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
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        got = pool.apply(_generate, (str(out), args.symbols, args.days, args.seed))
    size = sum(f.stat().st_size for f in out.rglob("*.parquet"))
    print(json.dumps({
        "benchmark": "synthetic_generation", "data": "SYNTHETIC", "symbols": args.symbols, "days": args.days,
        "rows": got["rows"], "seconds": round(got["seconds"], 2), "rows_per_s": round(got["rows"] / got["seconds"]),
        "peak_rss_gb": round(got["peak_rss_gb"], 3), "parquet_gb": round(size / 2**30, 3), "cpus": os.cpu_count(),
        "out": str(out),
    }))


if __name__ == "__main__":
    main()
