"""Strict-replay throughput: bars/s with Rule 201, LULD, the participation cap, costs and the independent audit.

    python benchmarks/replay_throughput.py --symbols 500 --days 21

Replays the adversarial signal (short after every falling bar, held one bar)
on the SYNTHETIC market (``dualhrq.data.synthetic``) through the whole strict
simulator: bar layout, Book B sizing, the engine's checked executions with
costs, daily results and the violation report of the independent audit
(``dualhrq.market.audit``), which is timed again on its own. Prints one JSON
line.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

from dualhrq.data.synthetic import generate_bars
from dualhrq.market.audit import recompute
from dualhrq.market.costs import CostModel
from dualhrq.portfolio.strict_sim import StrictSimBacktest, adversarial_signals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    start = time.perf_counter()
    bars = generate_bars(n_symbols=args.symbols, start="2024-01-02", n_days=args.days, seed=args.seed).collect()
    generated = time.perf_counter() - start
    signals = adversarial_signals(bars)

    start = time.perf_counter()
    result = StrictSimBacktest(bars, costs=CostModel()).run(signals)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    recompute(result.replay)
    audit_s = time.perf_counter() - start

    report = result.report
    print(json.dumps({
        "benchmark": "replay_throughput", "market": "synthetic", "symbols": args.symbols, "days": args.days,
        "bars": bars.height, "replay_s": round(seconds, 2), "bars_per_s": round(bars.height / seconds),
        "audit_s": round(audit_s, 2), "audit_bars_per_s": round(bars.height / audit_s),
        "generate_s": round(generated, 2), "fills": int(report["fills"].sum()),
        "rejections": int(report["rejections"].sum()), "violations": int(report["violations"].sum()),
        **result.replay.rules.luld.counts(),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }))


if __name__ == "__main__":
    main()
