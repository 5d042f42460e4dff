"""Time the end-of-run statistics on simulated CPCV path returns; prints one JSON line.

    python benchmarks/run_statistics.py --paths 4 --days 5000 --reps 500

``evaluate_paths`` runs, per path and for the path-average series, two bootstrap
confidence intervals and three bootstrap tests; its cost grows with
paths x reps x days.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from dualhrq.validation.evidence import StatsSettings, Trials, evaluate_paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=4)
    parser.add_argument("--days", type=int, default=5000)
    parser.add_argument("--reps", type=int, default=500)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    days = [datetime(2000, 1, 1) + timedelta(days=i) for i in range(args.days)]
    market = rng.normal(0.0003, 0.01, args.days)
    frames = [pl.DataFrame({"ts": days, "path": p, "strategy": s, "net": net}) for p in range(args.paths)
              for s, net in (("model", rng.normal(0.0004, 0.008, args.days)), ("buy_and_hold", market),
                             ("momentum", rng.normal(0, 0.008, args.days)))]
    returns = pl.concat(frames)
    start = time.perf_counter()
    evaluate_paths(returns, "buy_and_hold", Trials(10, 1e-4, "benchmark"), StatsSettings(bootstrap_reps=args.reps))
    seconds = time.perf_counter() - start
    print(json.dumps({"benchmark": "run_statistics", "paths": args.paths, "days": args.days, "reps": args.reps,
                      "baselines": 2, "seconds": round(seconds, 2)}))


if __name__ == "__main__":
    main()
