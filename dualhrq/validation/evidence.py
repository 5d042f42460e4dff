"""The statistics of a run, from return series per CPCV path: what a sceptical reviewer asks for.

Input is the long frame ``[ts, path, strategy, net]`` of periodic net returns
(``strategy`` = ``model`` or a baseline's name), so the statistics do not
depend on which backtest produced the returns.

- The distribution of path Sharpe ratios (mean, spread, worst, best), not
  one number (López de Prado 2018, AFML ch. 12).
- Per path and for the *path-average* series (the daily mean of the paths'
  returns: equal capital in each path's strategy, one tradeable series):
  PSR and DSR (Bailey & López de Prado 2012, 2014), the minimum track record
  length, stationary-bootstrap confidence intervals for the Sharpe ratio and
  the maximum drawdown, and SPA (Hansen 2005; arch's and the studentized
  statistic) and White's (2000) Reality Check p-values against the baselines.
  Run-level p-values are those of the path-average series, because an
  average of per-path p-values is not a p-value.
- The DSR deflates the path-average series' Sharpe ratio
  (``oos/sharpe_path_average``), so the variance of the trials is taken over
  that same statistic of every trial, not over their mean path Sharpe
  (``oos/sharpe``), which averaging over paths makes larger in size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import polars as pl

from dualhrq.config import (
    FINITE,
    NON_NEGATIVE,
    PositiveInt,
    between,
    check_fields,
    check_value,
    config_path,
    located,
    one_of,
)
from dualhrq.errors import ConfigError, DataError
from dualhrq.primitives.returns import max_drawdown, sharpe_ratio
from dualhrq.validation.statistics import (
    CI_METHODS,
    bootstrap_ci,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    min_track_record_length,
    probabilistic_sharpe_ratio,
    reality_check,
    studentized_spa,
    superior_predictive_ability,
)

MODEL = "model"
AVERAGE = "mean"  # the path label of the path-average series

# Metrics every run logs (baseline-specific ones, vs/<name>/..., come on top).
RUN_METRICS = frozenset({
    "oos/sharpe", "oos/sharpe_std", "oos/sharpe_min", "oos/sharpe_max", "oos/n_paths", "oos/days",
    "oos/max_drawdown", "oos/max_drawdown_mean", "oos/psr", "oos/dsr", "oos/min_trl_days",
    "oos/sharpe_ci_low", "oos/sharpe_ci_high", "oos/max_drawdown_ci_low", "oos/max_drawdown_ci_high",
    "oos/spa_pvalue", "oos/spa_studentized_pvalue", "oos/rc_pvalue", "oos/sharpe_improvement",
    "oos/sharpe_minus_baseline", "oos/sharpe_path_average", "baseline/sharpe", "dsr/n_trials", "dsr/sr_variance",
    "dsr/sr_benchmark",
})
# The statistic the DSR tests, and whose variance over the trials it needs.
TRIAL_SHARPE = "oos/sharpe_path_average"


@dataclass(frozen=True)
class StatsSettings:
    """``validation.stats``: bootstrap and interval settings, checked once."""

    bootstrap_reps: PositiveInt = 500
    block_size: PositiveInt | None = None
    ci_level: Annotated[float, between(0, 1, lo_open=True, hi_open=True)] = 0.9
    ci_method: Annotated[str, one_of(CI_METHODS)] = "percentile"
    seed: int = 0
    periods_per_year: PositiveInt = 252

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class Trials:
    """The trials behind the DSR: how many, and the variance of their per-period path-average Sharpe ratios."""

    n: PositiveInt
    sr_variance: Annotated[float, FINITE, NON_NEGATIVE]
    source: str  # "config" or where the sweep was read from

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class Evidence:
    """Run-level metrics, table rows, and what the plots need."""

    metrics: dict[str, float]
    path_rows: list[dict[str, Any]]
    baseline_rows: list[dict[str, Any]]
    path_sharpes: np.ndarray  # annualised, one per path
    primary: str


def path_average(returns: pl.DataFrame) -> pl.DataFrame:
    """``[ts, strategy, net]``: each strategy's mean return over the paths, per date."""
    return returns.group_by("ts", "strategy").agg(pl.col("net").mean()).sort("strategy", "ts")


def path_average_sharpe(returns: pl.DataFrame, periods_per_year: int) -> float:
    """The annualised Sharpe ratio of the model's path-average series: the statistic the DSR tests."""
    return sharpe_ratio(series(path_average(returns), MODEL), periods_per_year)


def baseline_metrics(name: str) -> frozenset[str]:
    """The run metrics logged for the baseline ``name``."""
    return frozenset({f"baseline/{name}/sharpe", f"baseline/{name}/max_drawdown",
                      *(f"vs/{name}/{k}" for k in ("sharpe_improvement", "spa_pvalue", "spa_studentized_pvalue",
                                                   "rc_pvalue"))})


def series(returns: pl.DataFrame, strategy: str, path: int | None = None) -> np.ndarray:
    """Net returns of one strategy on one path (or of the path-average frame when ``path`` is None), by date."""
    rows = returns.filter(pl.col("strategy") == strategy)
    if path is not None:
        rows = rows.filter(pl.col("path") == path)
    return rows.sort("ts")["net"].to_numpy()


def evaluate_paths(returns: pl.DataFrame, primary: str, trials: Trials, settings: StatsSettings) -> Evidence:
    """All statistics of the model against every baseline, per path and for the path-average series."""
    missing = {"ts", "path", "strategy", "net"} - set(returns.columns)
    if missing:
        raise DataError(f"path returns lack columns {sorted(missing)}; expected ts, path, strategy, net")
    strategies = returns["strategy"].unique().to_list()
    baselines = sorted(s for s in strategies if s != MODEL)
    if MODEL not in strategies or primary not in baselines:
        raise DataError(f"path returns need strategy {MODEL!r} and the primary baseline {primary!r}; "
                        f"got {sorted(strategies)}")
    ppy = settings.periods_per_year
    sr_star = expected_max_sharpe(trials.n, trials.sr_variance)
    paths = sorted(returns["path"].unique().to_list())
    average = path_average(returns)

    # every series is resampled with the same seed, so one path and its average give identical rows
    boot = {"reps": settings.bootstrap_reps, "block_size": settings.block_size, "seed": settings.seed}

    def tests(model: np.ndarray, bench: np.ndarray) -> dict[str, float]:
        return {"spa p": superior_predictive_ability(model, bench, **boot).pvalue,
                "spa-t p": studentized_spa(model, bench, **boot)["consistent"],
                "rc p": reality_check(model, bench, **boot).pvalue}

    def row(label: str, model: np.ndarray, bench: dict[str, np.ndarray]) -> dict[str, Any]:
        ci = {"level": settings.ci_level, "method": settings.ci_method, **boot}
        sharpe_ci = bootstrap_ci(model, lambda x: sharpe_ratio(x, ppy), **ci)
        dd_ci = bootstrap_ci(model, max_drawdown, **ci)
        return {"path": label, "days": model.size, "sharpe": sharpe_ci.estimate, "sharpe lo": sharpe_ci.low,
                "sharpe hi": sharpe_ci.high, "max dd": dd_ci.estimate, "dd lo": dd_ci.low, "dd hi": dd_ci.high,
                "psr": probabilistic_sharpe_ratio(model),
                "dsr": deflated_sharpe_ratio(model, trials.n, trials.sr_variance),
                "min trl": min_track_record_length(model), **tests(model, bench[primary]),
                **{f"{name} sharpe": sharpe_ratio(bench[name], ppy) for name in baselines}}

    path_rows = [row(str(p), series(returns, MODEL, p), {b: series(returns, b, p) for b in baselines})
                 for p in paths]
    avg_model, avg_bench = series(average, MODEL), {b: series(average, b) for b in baselines}
    avg = row(AVERAGE, avg_model, avg_bench)
    sharpes = np.array([r["sharpe"] for r in path_rows])
    drawdowns = np.array([r["max dd"] for r in path_rows])
    metrics = {
        "oos/sharpe": float(sharpes.mean()), "oos/sharpe_std": float(sharpes.std()),
        "oos/sharpe_min": float(sharpes.min()), "oos/sharpe_max": float(sharpes.max()),
        "oos/n_paths": float(len(paths)), "oos/days": float(avg["days"]),
        "oos/max_drawdown": float(drawdowns.max()), "oos/max_drawdown_mean": float(drawdowns.mean()),
        "oos/psr": avg["psr"], "oos/dsr": avg["dsr"], "oos/min_trl_days": avg["min trl"],
        "oos/sharpe_ci_low": avg["sharpe lo"], "oos/sharpe_ci_high": avg["sharpe hi"],
        "oos/max_drawdown_ci_low": avg["dd lo"], "oos/max_drawdown_ci_high": avg["dd hi"],
        "oos/spa_pvalue": avg["spa p"], "oos/spa_studentized_pvalue": avg["spa-t p"], "oos/rc_pvalue": avg["rc p"],
        TRIAL_SHARPE: avg["sharpe"],
        "dsr/n_trials": float(trials.n), "dsr/sr_variance": trials.sr_variance,
        "dsr/sr_benchmark": sr_star * math.sqrt(ppy),
    }
    baseline_rows = []
    for name in baselines:
        b_sharpes = np.array([sharpe_ratio(series(returns, name, p), ppy) for p in paths])
        b_dd = max(max_drawdown(series(returns, name, p)) for p in paths)
        improvement = _improvement(metrics["oos/sharpe"], float(b_sharpes.mean()))
        p_values = {k: avg[k] for k in ("spa p", "spa-t p", "rc p")} if name == primary else \
            tests(avg_model, avg_bench[name])
        metrics |= {f"baseline/{name}/sharpe": float(b_sharpes.mean()), f"baseline/{name}/max_drawdown": b_dd,
                    f"vs/{name}/sharpe_improvement": improvement, f"vs/{name}/spa_pvalue": p_values["spa p"],
                    f"vs/{name}/spa_studentized_pvalue": p_values["spa-t p"], f"vs/{name}/rc_pvalue": p_values["rc p"]}
        baseline_rows.append({"baseline": name + (" (primary)" if name == primary else ""),
                              "sharpe": float(b_sharpes.mean()), "max dd": b_dd, "model improvement": improvement,
                              **p_values})
    metrics["baseline/sharpe"] = metrics[f"baseline/{primary}/sharpe"]
    metrics["oos/sharpe_improvement"] = metrics[f"vs/{primary}/sharpe_improvement"]
    metrics["oos/sharpe_minus_baseline"] = metrics["oos/sharpe"] - metrics["baseline/sharpe"]
    return Evidence(metrics=metrics, path_rows=[*path_rows, avg], baseline_rows=baseline_rows, path_sharpes=sharpes,
                    primary=primary)


def _improvement(model: float, baseline: float) -> float:
    """Relative Sharpe improvement ``(SR - SR_b) / |SR_b|``; nan when the baseline's Sharpe is 0 or undefined."""
    if not math.isfinite(baseline) or baseline == 0:
        return math.nan
    return (model - baseline) / abs(baseline)


def trials_from_config(stats: Mapping[str, Any], where: str | None = None) -> Trials | None:
    """``n_trials`` / ``sr_variance`` of ``stats`` when set (both), None to read them from the sweep.

    ``where``: the config path of ``stats`` for error messages; by default the
    node's own (``validation.stats`` when given ``cfg.validation.stats``).
    """
    n, var = stats.get("n_trials"), stats.get("sr_variance")
    if n is None and var is None:
        return None
    with located(config_path(stats) if where is None else where):
        if n is None or var is None:
            unset, other = ("n_trials", "sr_variance") if n is None else ("sr_variance", "n_trials")
            raise ConfigError(f"{unset} is null but {other} is set: set both (trials tried and the variance of "
                              "their per-period Sharpe ratios) or neither (read them from the runs of the sweep)",
                              field=unset)
        check_value("n_trials", n, PositiveInt)
        check_value("sr_variance", var, Annotated[float, FINITE, NON_NEGATIVE])
    return Trials(n=n, sr_variance=float(var), source="config")


def trials_from_sharpes(sharpes: Sequence[float], periods_per_year: int, source: str, launched: int = 0) -> Trials:
    """Trials from the annualised path-average Sharpe ratios of a sweep's runs, at least ``launched`` of them.

    ``launched`` counts the trials whose Sharpe ratio is not known (yet): a
    sweep's planned jobs still running, runs that failed after evaluation
    began. The variance is the per-period one over the known ratios.
    """
    per_period = np.asarray([s for s in sharpes if math.isfinite(s)], dtype=float) / math.sqrt(periods_per_year)
    variance = float(per_period.var(ddof=1)) if per_period.size > 1 else 0.0
    return Trials(n=max(1, launched, per_period.size), sr_variance=variance, source=source)
