"""Strict-replay throughput: bars/s with Rule 201, LULD and costs on, vectorised vs a per-bar Python loop.

    python benchmarks/replay_throughput.py --symbols 500 --days 21 --loop-symbols 5

Replays the adversarial signal (short after every falling bar, held one bar)
on the SYNTHETIC market (``dualhrq.data.synthetic``) through the whole strict
simulator: bar layout, rule state, Book B sizing, checked executions with
costs, daily results and the violation report. The same rules and execution
are then run by the plain per-bar loop (``dualhrq.market.loop``) on the first
``--loop-symbols`` symbols, with the vectorised replay of those symbols timed
alongside and checked to agree fill for fill. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np
import polars as pl

from dualhrq.data.synthetic import generate_bars
from dualhrq.market.costs import CostModel
from dualhrq.market.engine import RuleState, replay
from dualhrq.market.grid import build_grid
from dualhrq.market.loop import replay_loop
from dualhrq.portfolio.strict_sim import StrictSimBacktest, adversarial_signals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--loop-symbols", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    start = time.perf_counter()
    bars = generate_bars(n_symbols=args.symbols, start="2024-01-02", n_days=args.days, seed=args.seed).collect()
    generated = time.perf_counter() - start
    signals = adversarial_signals(bars)
    costs = CostModel()

    start = time.perf_counter()
    result = StrictSimBacktest(bars, costs=costs).run(signals)
    seconds = time.perf_counter() - start

    # the same logic on a subset: vectorised vs per-bar loop, on identical targets
    subset = bars.filter(pl.col("symbol").is_in(bars["symbol"].unique().sort()[: args.loop_symbols].to_list()))
    grid = build_grid(subset)
    falling = np.vstack([np.zeros((1, grid.shape[1])), np.diff(grid.close, axis=0)]) < 0
    target = np.where(falling, -100.0, 0.0)
    start = time.perf_counter()
    fast = replay(grid, target, costs, RuleState.of(grid))
    fast_s = time.perf_counter() - start
    start = time.perf_counter()
    slow = replay_loop(grid, target, costs)
    loop_s = time.perf_counter() - start
    agree = bool(np.array_equal(fast.fill, slow["fill"]) and np.array_equal(fast.reason, slow["reason"]))

    report = result.report
    n_sub = subset.height
    print(json.dumps({
        "benchmark": "replay_throughput", "market": "synthetic", "symbols": args.symbols, "days": args.days,
        "bars": bars.height, "replay_s": round(seconds, 2), "bars_per_s": round(bars.height / seconds),
        "generate_s": round(generated, 2), "fills": int(report["fills"].sum()),
        "rejections": int(report["rejections"].sum()), "violations": int(report["violations"].sum()),
        "loop_symbols": args.loop_symbols, "loop_bars": n_sub, "loop_bars_per_s": round(n_sub / loop_s),
        "vectorised_subset_bars_per_s": round(n_sub / fast_s), "speedup_vs_loop": round(loop_s / seconds * bars.height
                                                                                        / n_sub, 1),
        "loop_agrees": agree, "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }))


if __name__ == "__main__":
    main()
