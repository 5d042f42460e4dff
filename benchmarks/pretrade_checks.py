"""Time of the pre-trade checks over a year of minute bars, against the replay they guard.

    python benchmarks/pretrade_checks.py --symbols 50 --days 252 --every 30

Random long/short targets (a new one per symbol every ``every`` bars, sized
around 2% of the capital each) on a random-walk mid and volume grid of
``days`` x 390 bars; every limit is set, tight enough that some decisions are
rejected. Prints one JSON line: the seconds, the decisions checked and those
rejected per limit.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from dualhrq.risk.limits import PreTradeLimits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--days", type=int, default=252)
    parser.add_argument("--every", type=int, default=30)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    T, N, capital = args.days * 390, args.symbols, 1_000_000.0
    day = np.repeat(np.arange(args.days), 390)
    mid = 50.0 * np.exp(np.cumsum(rng.normal(0, 1e-3, (T, N)), axis=0))
    volume = rng.lognormal(np.log(5_000), 0.5, (T, N))
    weight = rng.normal(0, 0.03, (T, N))
    target = np.full((T, N), np.nan)
    decide = np.arange(T)[:, None] % args.every == rng.integers(0, args.every, N)
    target[decide] = np.round(weight[decide] * capital / mid[decide])
    limits = PreTradeLimits(max_position=0.06, max_gross=1.0, max_net=0.3, max_concentration=0.1, min_names=20,
                            max_adv_share=0.002, adv_days=20, max_strategy_gross={"book_b": 0.9})
    start = time.perf_counter()
    result = limits.check(target, mid, day, volume, capital)
    seconds = time.perf_counter() - start
    print(json.dumps({"benchmark": "pretrade_checks", "bars": T, "symbols": N, "decisions": int(decide.sum()),
                      "rejections": result.rejections.height, "by_limit": result.counts,
                      "seconds": round(seconds, 2)}))


if __name__ == "__main__":
    main()
