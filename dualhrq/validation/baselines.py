"""Baseline strategies replayed on the same CPCV paths as the model.

A model only earns credit for beating something simple on the same dates
with the same costs. Each baseline is a signal per (ts, symbol) decided at
bar t's close, like the model's, so the one backtest replays all of them:

- ``buy_and_hold``: always long (signal 1);
- ``momentum``: the time-series momentum rule of Moskowitz, Ooi & Pedersen
  (2012, "Time series momentum"): long when the close is above the close
  ``lookback`` bars earlier, short when below, flat without enough history;
- ``xs_momentum``: the cross-sectional momentum rule of Jegadeesh & Titman
  (1993): rank the symbols of each date by their return from ``lookback``
  to ``skip`` bars ago (12-1 months: 252 and 21 daily bars), long the top
  ``fraction``, short the bottom ``fraction``, flat in between and without
  enough history; for panels of several stocks;
- runs: another MLflow run's out-of-sample signals (the ``conditioning=none``
  run, say), matched fold by fold, so its paths are the same combinations of
  the same test blocks;
- external: a return series from outside the panel (the S&P 500 index for a
  panel of its stocks): not a signal but the series itself, held long, so
  :func:`external_returns` gives its close-to-next-close return per date and
  the paths take it on their own dates (:mod:`dualhrq.validation.oos`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import polars as pl
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from dualhrq.config import (
    NonNegativeInt,
    PositiveInt,
    between,
    build,
    check_fields,
    invalid,
    located,
    parse,
    positive_int,
)
from dualhrq.errors import ConfigError, DataError
from dualhrq.features.cross_section import cross_sectional_rank

BUY_AND_HOLD = "buy_and_hold"
MOMENTUM = "momentum"
XS_MOMENTUM = "xs_momentum"
PREDICTIONS_ARTIFACT = "oos_predictions.parquet"

__all__ = ["BUY_AND_HOLD", "MOMENTUM", "XS_MOMENTUM", "Baselines", "add_baseline_signals", "baseline_names",
           "cross_sectional_momentum_signal", "external_loaders", "external_returns", "momentum_signal", "run_signal"]


@dataclass(frozen=True)
class Momentum:
    """``momentum``: the time-series momentum baseline's look-back in bars."""

    lookback: PositiveInt

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class CrossSectionalMomentum:
    """``xs_momentum``: the ranking return runs from ``lookback`` to ``skip`` bars ago; the top and bottom
    ``fraction`` of the symbols are held long and short."""

    lookback: PositiveInt = 252
    skip: NonNegativeInt = 21
    fraction: Annotated[float, between(0.0, 0.5, lo_open=True)] = 1 / 3

    def __post_init__(self) -> None:
        check_fields(self)
        if self.skip >= self.lookback:
            raise invalid("skip", self.skip, f"fewer bars than lookback ({self.lookback})")


@dataclass(frozen=True)
class Baselines:
    """The configured baselines (``validation.baselines`` of the training job): the primary one, momentum
    (None: left out), other runs' signals by name (MLflow run ids) and external return series by name
    (each a config node building a loader of daily closes ``ts, close``)."""

    primary: str
    momentum: Momentum | None = None
    xs_momentum: CrossSectionalMomentum | None = None
    runs: Mapping[str, Any] | None = None
    external: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        check_fields(self)
        builtin = (BUY_AND_HOLD, MOMENTUM, XS_MOMENTUM)
        for name, run_id in (self.runs or {}).items():
            if name in builtin or not isinstance(run_id, str) or not run_id:
                raise ConfigError(f"runs.{name}: give a new baseline name and an MLflow run id (a string), "
                                  f"got {run_id!r}", field=f"runs.{name}")
        for name, node in (self.external or {}).items():
            if name in (*builtin, *(self.runs or {})) or not isinstance(node, Mapping) or "_target_" not in node:
                raise ConfigError(f"external.{name}: give a new baseline name and a config node whose _target_ "
                                  f"loads daily closes (ts, close), e.g. dualhrq.data.sources.load_sp500_index "
                                  f"with _partial_: true; got {node!r}", field=f"external.{name}")
        if self.primary not in self.names():
            raise invalid("primary", self.primary, f"a configured baseline, one of {self.names()}")

    def names(self) -> list[str]:
        return [BUY_AND_HOLD, *([MOMENTUM] if self.momentum is not None else []),
                *([XS_MOMENTUM] if self.xs_momentum is not None else []), *map(str, self.runs or {}),
                *map(str, self.external or {})]


def momentum_signal(bars: pl.DataFrame, lookback: int) -> pl.DataFrame:
    """``[ts, symbol, signal]``: sign of ``close_t / close_{t - lookback} - 1`` per symbol, 0 before that."""
    positive_int(lookback, "lookback")
    missing = {"ts", "symbol", "close"} - set(bars.columns)
    if missing:
        raise DataError(f"momentum baseline needs bars with columns ts, symbol, close; missing {sorted(missing)}")
    change = pl.col("close") / pl.col("close").shift(lookback).over("symbol", order_by="ts") - 1.0
    return bars.select("ts", "symbol", signal=change.sign().fill_null(0.0).cast(pl.Float64))


def cross_sectional_momentum_signal(bars: pl.DataFrame, rule: CrossSectionalMomentum) -> pl.DataFrame:
    """``[ts, symbol, signal]``: each date's symbols ranked by ln(close_{t-skip} / close_{t-lookback}), ranks
    averaged over ties and scaled to [0, 1] (0 the weakest); +1 at a rank >= 1 - ``rule.fraction``, -1 at a
    rank <= ``rule.fraction``, 0 otherwise.

    A symbol without enough history is flat and left out of the ranking; a date with one ranked symbol
    holds nothing."""
    missing = {"ts", "symbol", "close"} - set(bars.columns)
    if missing:
        raise DataError(f"xs_momentum baseline needs bars with columns ts, symbol, close; missing {sorted(missing)}")
    close = pl.col("close")
    past = (close.shift(rule.skip) / close.shift(rule.lookback)).log().over("symbol", order_by="ts")
    # one window per step: a per-date rank over a per-symbol expression needs that column first
    ranked = bars.with_columns(_past=past).with_columns(_rank=cross_sectional_rank(pl.col("_past")))
    ranked = ranked.with_columns(_ranked=pl.col("_rank").count().over("ts"))
    held = pl.col("_ranked") > 1
    top, bottom = pl.col("_rank") >= 1 - rule.fraction - 1e-12, pl.col("_rank") <= rule.fraction + 1e-12
    signal = pl.when(held & top).then(1.0).when(held & bottom).then(-1.0).otherwise(0.0)
    return ranked.select("ts", "symbol", signal=signal)


def external_loaders(cfg: Mapping[str, Any], where: str = "validation.baselines") -> dict[str, Callable[[], Any]]:
    """The loader of each external baseline configured by ``cfg`` (read at config path ``where``), built but
    not called: a bad ``_target_`` stops the job before any data is read."""
    out = {}
    for name, node in (parse(Baselines, cfg, where).external or {}).items():
        field = f"{where}.external.{name}"
        try:
            loader = build(node)
        except Exception as err:  # noqa: BLE001 - hydra's import and argument errors, reported under the field
            raise ConfigError(f"{field}: cannot build its loader ({err}). Fix: point _target_ at a function "
                              "returning daily closes (ts, close), with _partial_: true", field=field) from None
        if not callable(loader):
            raise ConfigError(f"{field}: builds a {type(loader).__name__}, not a loader. Fix: add _partial_: true",
                              field=field)
        out[str(name)] = loader
    return out


def external_returns(cfg: Mapping[str, Any], where: str = "validation.baselines") -> dict[str, pl.DataFrame]:
    """``[ts, next_return]`` of each external baseline configured by ``cfg`` (read at config path ``where``):
    ``close[t+1] / close[t] - 1`` between the series' own consecutive dates, like a held position's
    return over (t, t+1] in the backtest; the series' last date has none."""
    out = {}
    for name, loader in external_loaders(cfg, where).items():
        field = f"{where}.external.{name}"
        closes = loader()
        if not isinstance(closes, pl.DataFrame) or not {"ts", "close"} <= set(closes.columns):
            raise DataError(f"{field}: the loader must return a polars frame with columns ts, close")
        closes = closes.select(pl.col("ts").cast(pl.Datetime("us")), pl.col("close").cast(pl.Float64)).sort("ts")
        if not closes["close"].is_finite().all() or (closes["close"] <= 0).any() or closes["ts"].is_duplicated().any():
            raise DataError(f"{field}: closes must be finite, positive and one per date. Fix: clean the series")
        out[name] = closes.select("ts", next_return=pl.col("close").shift(-1) / pl.col("close") - 1.0)
    return out


def run_signal(client: MlflowClient, run_id: str, field: str) -> pl.DataFrame:
    """``[fold, ts, symbol, signal]`` of another run's out-of-sample predictions, read from its artifacts;
    ``field`` names the setting that gave ``run_id`` in a ConfigError."""
    try:
        path = client.download_artifacts(run_id, PREDICTIONS_ARTIFACT)
    except MlflowException as err:
        raise ConfigError(f"{field}={run_id!r}: cannot read {PREDICTIONS_ARTIFACT} of that MLflow run ({err}); "
                          "give the id of a finished training run in the same tracking store", field=field) from None
    return pl.read_parquet(Path(path)).select("fold", "ts", "symbol", "signal")


def baseline_names(cfg: Mapping[str, Any], where: str = "validation.baselines") -> list[str]:
    """Names of the baselines configured by ``cfg``, read at config path ``where``, after checking it."""
    return parse(Baselines, cfg, where).names()


def add_baseline_signals(predictions: pl.DataFrame, cfg: Mapping[str, Any], bars: pl.DataFrame,
                         client: MlflowClient | None, where: str = "validation.baselines") -> pl.DataFrame:
    """``predictions`` plus one ``baseline:<name>`` signal column per baseline configured by ``cfg``
    (read at config path ``where``)."""
    baselines = parse(Baselines, cfg, where)
    out = predictions.with_columns(pl.lit(1.0).alias(f"baseline:{BUY_AND_HOLD}"))
    if baselines.momentum is not None:
        mom = momentum_signal(bars, int(baselines.momentum.lookback)).rename({"signal": f"baseline:{MOMENTUM}"})
        out = out.join(mom, on=["ts", "symbol"], how="left")
    if baselines.xs_momentum is not None:
        xs = cross_sectional_momentum_signal(bars, baselines.xs_momentum).rename(
            {"signal": f"baseline:{XS_MOMENTUM}"})
        out = out.join(xs, on=["ts", "symbol"], how="left")
    with located(where):
        for name, run_id in (baselines.runs or {}).items():
            field = f"runs.{name}"
            if client is None:
                raise ConfigError(f"{field}: reading another run's predictions needs the MLflow tracking store",
                                  field=field)
            other = run_signal(client, run_id, field).rename({"signal": f"baseline:{name}"})
            out = out.join(other, on=["fold", "ts", "symbol"], how="left")
    column = next((c for c in out.columns if c.startswith("baseline:") and out[c].null_count()), None)
    if column is not None:
        raise DataError(f"baseline {column.removeprefix('baseline:')!r} has no signal for "
                        f"{out[column].null_count()} of the {out.height} out-of-sample rows; a run baseline must "
                        "come from a run with the same data, splitter and folds (validation.baselines.runs)")
    return out
