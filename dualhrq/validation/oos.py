"""From out-of-sample predictions to evidence: CPCV paths, backtests, statistics.

Every fold's test predictions are replayed; with all folds present the
predictions are reassembled into the splitter's ``n_paths`` backtest paths
(AFML 12.4), each a full out-of-sample history. With a subset of folds
(``validation.folds``), the available test blocks form one partial path.
Each path is compared with buy-and-hold on the same dates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from dualhrq.market.backtest import SignalBacktest
from dualhrq.validation.cpcv import CombinatorialPurgedKFold
from dualhrq.validation.statistics import (
    deflated_sharpe_ratio,
    probabilistic_sharpe_ratio,
    reality_check,
    superior_predictive_ability,
)

OBJECTIVES = frozenset({
    "oos/sharpe", "oos/sharpe_min", "oos/sharpe_std", "oos/max_drawdown", "oos/psr", "oos/dsr",
    "oos/spa_pvalue", "oos/rc_pvalue", "oos/loss", "baseline/sharpe", "oos/sharpe_minus_baseline",
})


@dataclass(frozen=True)
class OOSSummary:
    """Run-level metrics and the rows of the summary tables."""

    metrics: dict[str, float]
    fold_rows: list[dict[str, Any]]
    path_rows: list[dict[str, Any]]


def assemble_paths(predictions: pl.DataFrame, splitter: CombinatorialPurgedKFold, t: np.ndarray,
                   folds: Sequence[int]) -> list[pl.DataFrame]:
    """Split fold predictions into CPCV paths; one partial path when folds are missing."""
    dates = np.unique(t)
    groups = splitter.groups(dates)
    with_group = predictions.join(pl.DataFrame({"ts": dates, "group": groups}), on="ts", how="left")
    if sorted(folds) != list(range(splitter.get_n_splits())):
        return [with_group.sort("ts", "fold").unique(["ts", "symbol"], keep="first", maintain_order=True)]
    table = splitter.path_folds()
    return [
        pl.concat([with_group.filter((pl.col("group") == g) & (pl.col("fold") == int(table[g, p])))
                   for g in range(splitter.n_groups)]).sort("ts", "symbol")
        for p in range(splitter.n_paths)
    ]


def evaluate_oos(predictions: pl.DataFrame, splitter: CombinatorialPurgedKFold, t: np.ndarray,
                 folds: Sequence[int], backtest: SignalBacktest, stats: Mapping[str, Any]) -> OOSSummary:
    """Backtest every path and the buy-and-hold baseline; PSR, DSR, SPA and Reality Check per path."""
    fold_rows = [
        {"fold": f, "test groups": str(splitter.test_groups(f)), "n_test": part.height,
         "oos loss": float(part["oos/loss"][0]), "oos sharpe": float(part["oos/sharpe"][0])}
        for f in folds for part in [predictions.filter(pl.col("fold") == f)]
    ]
    path_rows = []
    for p, path in enumerate(assemble_paths(predictions, splitter, t, folds)):
        model = backtest.run(path)
        base = backtest.run(path.with_columns(signal=pl.lit(1.0)))
        aligned = model.returns.join(base.returns, on="ts", suffix="_base")
        spa = superior_predictive_ability(aligned["net"].to_numpy(), aligned["net_base"].to_numpy(),
                                          reps=int(stats["bootstrap_reps"]), seed=p)
        rc = reality_check(aligned["net"].to_numpy(), aligned["net_base"].to_numpy(),
                           reps=int(stats["bootstrap_reps"]), seed=p)
        path_rows.append({
            "path": p, "days": model.returns.height, "sharpe": model.sharpe,
            "max dd": model.max_drawdown, "turnover": model.turnover,
            "psr": probabilistic_sharpe_ratio(model.net),
            "dsr": deflated_sharpe_ratio(model.net, n_trials=int(stats["n_trials"]),
                                         sr_variance=float(stats["sr_variance"])),
            "spa p": spa.pvalue, "rc p": rc.pvalue, "b&h sharpe": base.sharpe,
        })
    col = {k: np.array([r[k] for r in path_rows], dtype=float) for k in path_rows[0] if k != "path"}
    metrics = {
        "oos/sharpe": float(col["sharpe"].mean()), "oos/sharpe_min": float(col["sharpe"].min()),
        "oos/sharpe_std": float(col["sharpe"].std()), "oos/max_drawdown": float(col["max dd"].max()),
        "oos/psr": float(col["psr"].mean()), "oos/dsr": float(col["dsr"].mean()),
        "oos/spa_pvalue": float(col["spa p"].mean()), "oos/rc_pvalue": float(col["rc p"].mean()),
        "oos/loss": float(np.mean([r["oos loss"] for r in fold_rows])),
        "baseline/sharpe": float(col["b&h sharpe"].mean()),
    }
    metrics["oos/sharpe_minus_baseline"] = metrics["oos/sharpe"] - metrics["baseline/sharpe"]
    assert set(metrics) == OBJECTIVES
    return OOSSummary(metrics=metrics, fold_rows=fold_rows, path_rows=path_rows)
