"""The adversarial replay under every impact model and seed: violations by the independent audit, LULD events.

    python benchmarks/adversarial_audit.py --symbols 20 --days 21 --seeds 10 --impact-coef 0.05

For each seed, the SYNTHETIC market (``dualhrq.data.synthetic``) is replayed
with the adversarial signal (short after every falling bar) under each
slippage model; the audit's violations, the fills, the LULD limit states and
pauses, and the planted LULD-sized spikes with the share that tripped a
limit state or pause are summed per model. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

import polars as pl

from dualhrq.data.synthetic import generate_bars, generate_events
from dualhrq.market.costs import SLIPPAGE_MODELS, CostModel
from dualhrq.market.luld import trips
from dualhrq.portfolio.strict_sim import StrictSimBacktest, adversarial_signals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--impact-coef", type=float, default=0.05)  # small enough that losses stay below capital
    args = parser.parse_args()
    start = time.perf_counter()
    totals = {m: {"violations": 0, "fills": 0, "limit_states": 0, "pauses": 0, "spikes": 0, "spikes_tripped": 0}
              for m in SLIPPAGE_MODELS}
    for seed in range(args.seeds):
        spec = dict(n_symbols=args.symbols, start="2024-01-02", n_days=args.days, seed=seed)
        bars = generate_bars(**spec).collect()
        spikes = generate_events(**spec).filter(pl.col("kind") == "spike")
        signals = adversarial_signals(bars)
        for model in SLIPPAGE_MODELS:
            result = StrictSimBacktest(bars, costs=CostModel(slippage=model, impact_coef=args.impact_coef)).run(signals)
            rec, out = result.replay, totals[model]
            out["violations"] += int(result.report["violations"].sum())
            out["fills"] += int(result.report["fills"].sum())
            for k, v in rec.rules.luld.counts().items():
                out[k] += v
            tripped = trips(rec.rules.luld, rec.grid, spikes)
            out["spikes"] += tripped.height
            out["spikes_tripped"] += int((tripped["limit_state"] | tripped["paused"]).sum())
    print(json.dumps({"benchmark": "adversarial_audit", "market": "synthetic", "symbols": args.symbols,
                      "days": args.days, "seeds": args.seeds, "impact_coef": args.impact_coef, "models": totals,
                      "seconds": round(time.perf_counter() - start, 1)}))


if __name__ == "__main__":
    main()
