"""The integrator on the bundled 20 S&P 500 stocks: seconds per run, rebalances, Sharpe and drawdown per allocator.

    python benchmarks/integrator_throughput.py --start 2005-01-03 --end 2022-12-28 --window 250

Each stock's daily close-to-close return is one stream. Every allocator runs
with monthly rebalances (plus a 5% drift band) and 2 bps of cost; the
regime-budgeted run adds rebalances on changes of the S&P 500 index's
volatility regime, with a crisis budget that puts half the risk on the five
lowest-volatility names of the first window. The figures are in-sample
descriptions of real data (20 survivors: survivorship bias), not a strategy
result. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import polars as pl

from dualhrq.data.sources import load_sp500_index, load_sp500_stocks
from dualhrq.portfolio.allocation import FixedWeights, InverseVolatility, RiskBudgeting
from dualhrq.portfolio.integrator import Integrator, Rebalance
from dualhrq.portfolio.regime import VolatilityRegime
from dualhrq.primitives.returns import max_drawdown, sharpe_ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2005-01-03")
    parser.add_argument("--end", default="2022-12-28")
    parser.add_argument("--window", type=int, default=250)
    args = parser.parse_args()
    bars = load_sp500_stocks(start=args.start, end=args.end)
    closes = bars.pivot(on="symbol", index="ts", values="close").sort("ts")
    names = [c for c in closes.columns if c != "ts"]
    books = closes.select("ts", *(pl.col(c).pct_change() for c in names)).slice(1)
    index = load_sp500_index().filter(pl.col("ts").is_between(books["ts"].min(), books["ts"].max()))
    regime = VolatilityRegime().classify(index.select("ts", ret=pl.col("close").pct_change()).slice(1))
    k = len(names)
    first = books.head(args.window).drop("ts").to_numpy().std(axis=0)
    calm = np.isin(np.arange(k), np.argsort(first)[:5])
    crisis = np.where(calm, 0.5 / 5, 0.5 / (k - 5))
    crisis = tuple(crisis / crisis.sum())
    rebalance = Rebalance(calendar="monthly", drift_band=0.05)
    runs = {
        "equal": Integrator(FixedWeights((1 / k,) * k), rebalance, cost_bps=2.0, min_history=args.window),
        "inverse_volatility": Integrator(InverseVolatility(args.window), rebalance, 2.0, args.window),
        "equal_risk": Integrator(RiskBudgeting(args.window), rebalance, 2.0, args.window),
        "regime_budgets": Integrator(RiskBudgeting(args.window), Rebalance("monthly", 0.05, on_regime_change=True),
                                     2.0, args.window, regime_budgets={"crisis": crisis}),
    }
    out = {}
    for name, integrator in runs.items():
        start = time.perf_counter()
        result = integrator.run(books, regime)
        seconds = time.perf_counter() - start
        net = result.returns["net"].to_numpy()
        out[name] = {"seconds": round(seconds, 2), "rebalances": result.rebalances.height,
                     "sharpe": round(sharpe_ratio(net), 3), "max_drawdown": round(max_drawdown(net), 3),
                     "cost_total": round(float(result.returns["cost"].sum()), 5)}
    print(json.dumps({"benchmark": "integrator_throughput", "data": "bundled skfolio S&P 500 stocks (real)",
                      "streams": k, "days": books.height, "window": args.window, "runs": out}))


if __name__ == "__main__":
    main()
