"""From out-of-sample predictions to return series: CPCV paths and their backtests.

With all folds present the predictions are reassembled into the splitter's
``n_paths`` backtest paths (AFML 12.4), each a full out-of-sample history.
With a subset of folds (``validation.folds``), the available test blocks form
one partial path. The model and every baseline are replayed on each path;
an external baseline (an index) is not replayed but read on the path's
dates. :mod:`dualhrq.validation.evidence` turns the returns into statistics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np
import polars as pl

from dualhrq.errors import DataError
from dualhrq.validation.cpcv import CombinatorialPurgedKFold
from dualhrq.validation.evidence import RUN_METRICS

# run metrics a job can return to Hydra's sweepers (validation.objective)
OBJECTIVES = RUN_METRICS | {"oos/loss"}
RETURNS_ARTIFACT = "cpcv_returns.parquet"  # the run artifact of :func:`path_returns`' series
# per-fold metrics the predictions carry as columns; at run level input and conditioning metrics are averaged
# over folds, simulator counts (fills, rejections, violations) summed, and parameter counts taken from the first fold
COND_PREFIXES = ("inputs/", "regime/", "conditioning/", "retrieval/", "patterns/")
SIM_PREFIX = "sim/"
PARAMS_PREFIX = "params/"


class BacktestOutcome(Protocol):
    """What the paths read of a backtest's result: its per-date returns (``ts, gross, cost, net``)."""

    @property
    def returns(self) -> pl.DataFrame: ...


class Backtester(Protocol):
    """What the paths need of a backtester (the daily ``SignalBacktest``, the strict simulator, ...)."""

    def run(self, predictions: pl.DataFrame) -> BacktestOutcome: ...


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


def fold_rows(predictions: pl.DataFrame, splitter: CombinatorialPurgedKFold, folds: Sequence[int]) -> list[dict]:
    """One summary row per fold: its test groups, size, and the out-of-sample loss and Sharpe it logged."""
    return [
        {"fold": f, "test groups": str(splitter.test_groups(f)), "n_test": part.height,
         "oos loss": float(part["oos/loss"][0]), "oos sharpe": float(part["oos/sharpe"][0])}
        for f in folds for part in [predictions.filter(pl.col("fold") == f)]
    ]


def path_returns(predictions: pl.DataFrame, splitter: CombinatorialPurgedKFold, t: np.ndarray,
                 folds: Sequence[int], backtest: Backtester,
                 external: Mapping[str, pl.DataFrame] | None = None) -> pl.DataFrame:
    """Net returns per date of the model and of every ``baseline:<name>`` signal column, on each CPCV path,
    and of every ``external`` series (name -> ``[ts, next_return]``) on the same path's dates.

    Long format ``[ts, path, strategy, net]`` with ``strategy`` = ``model`` or
    the baseline's name: what the statistics consume, whichever backtest made it.
    An external series is a benchmark held throughout, not a strategy traded
    on the panel: its return over (t, t+1] enters as is, without costs.
    """
    strategies = {"model": "signal"} | {c.removeprefix("baseline:"): c for c in predictions.columns
                                         if c.startswith("baseline:")}
    frames = []
    for p, path in enumerate(assemble_paths(predictions, splitter, t, folds)):
        for name, column in strategies.items():
            result = backtest.run(path.with_columns(signal=pl.col(column)))
            frames.append(result.returns.select("ts", pl.lit(p).alias("path"), pl.lit(name).alias("strategy"),
                                                "net"))
        dates = path.select(pl.col("ts").unique().sort())
        for name, series in (external or {}).items():
            frames.append(_on_dates(dates, series, name).select("ts", pl.lit(p).alias("path"),
                                                                 pl.lit(name).alias("strategy"), "net"))
    return pl.concat(frames)


def _on_dates(dates: pl.DataFrame, series: pl.DataFrame, name: str) -> pl.DataFrame:
    """``[ts, net]``: the external series' ``next_return`` on each of ``dates``; refused where it has none."""
    joined = dates.join(series.select(pl.col("ts").cast(dates["ts"].dtype), "next_return"), on="ts", how="left")
    gaps = joined.filter(pl.col("next_return").is_null() | pl.col("next_return").is_nan())
    if gaps.height:
        raise DataError(f"baseline {name!r} has no return for {gaps.height} of the {dates.height} out-of-sample "
                        f"dates (first {gaps['ts'][0]}); its series must cover every decision date and the next. "
                        f"Fix: give a series over the data's dates (validation.baselines.external.{name})")
    return joined.select("ts", net=pl.col("next_return"))
