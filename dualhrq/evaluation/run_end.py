"""The end of a training run: baselines, CPCV path returns, statistics, gates, report, MLflow, console.

Everything after the folds have produced their out-of-sample predictions.
Gates read the run's metrics back from MLflow, so a metric any part of the
job logged under its run-level name (``sim/violations``, ...) is judged; a
gate whose metric this job's combination never logs
(:mod:`dualhrq.evaluation.run_metrics`) is left out, with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from omegaconf import DictConfig, OmegaConf

from dualhrq.config import PositiveInt, build, check_value, parse, positive_int
from dualhrq.evaluation.run_metrics import run_metrics
from dualhrq.models.params import format_budget_table
from dualhrq.primitives.tables import format_table
from dualhrq.report.run import write_run_report
from dualhrq.tracking.mlflow_run import RunTracker
from dualhrq.tracking.sweep import TRIAL_TAG, sweep_trials
from dualhrq.validation.baselines import (
    PREDICTIONS_ARTIFACT,
    add_baseline_signals,
    baseline_names,
    external_loaders,
    external_returns,
)
from dualhrq.validation.cpcv import CombinatorialPurgedKFold
from dualhrq.validation.evidence import (
    TRIAL_SHARPE,
    StatsSettings,
    Trials,
    evaluate_paths,
    path_average_sharpe,
    trials_from_config,
    trials_from_sharpes,
)
from dualhrq.validation.gates import (
    GateResult,
    GatesFailed,
    evaluate_gates,
    gate_metrics,
    gate_rows,
    gate_tags,
    gates_from_config,
    left_out_notes,
    unmet,
)
from dualhrq.validation.oos import (
    COND_PREFIXES,
    PARAMS_PREFIX,
    RETURNS_ARTIFACT,
    SIM_PREFIX,
    fold_rows,
    path_returns,
)


@dataclass(frozen=True)
class RunOutcome:
    metrics: dict[str, float]
    gates: list[GateResult]
    summary: str


def check_evaluation_config(cfg: DictConfig) -> None:
    """Refuse bad gates (malformed, contradictory, or on a metric no part of the job logs), baselines,
    statistics or report settings before any data is read."""
    baselines = OmegaConf.to_container(cfg.validation.baselines, resolve=True)
    baseline_names(baselines)
    external_loaders(baselines)
    gates_from_config(OmegaConf.to_container(cfg.validation.gates, resolve=True), known=run_metrics(cfg).known)
    stats_settings(cfg)
    trials_from_config(cfg.validation.stats)
    positive_int(cfg.validation.report.rolling_window, "validation.report.rolling_window")
    check_value("validation.strict", cfg.validation.strict, bool)


def stats_settings(cfg: DictConfig) -> StatsSettings:
    """``validation.stats`` (less the trials) and the backtest's periods per year, checked."""
    stats = OmegaConf.to_container(cfg.validation.stats, resolve=True)
    stats = {k: v for k, v in stats.items() if k not in ("n_trials", "sr_variance")}
    periods = check_value("backtest.periods_per_year", cfg.backtest.periods_per_year, PositiveInt)
    return parse(StatsSettings, stats, "validation.stats", periods_per_year=periods)


def trials_of_sweep(tracker: RunTracker, periods_per_year: int) -> Trials:
    """The trials launched in this run's sweep (itself included) and the variance of their path-average
    Sharpe ratios known so far."""
    sweep = sweep_trials(tracker.client, tracker.run_id)
    return trials_from_sharpes(sweep.sharpes, periods_per_year, launched=sweep.launched,
                               source=f"sweep: {sweep.launched} trials in {sweep.where} "
                                      f"({len(sweep.sharpes)} evaluated so far)")


def finish_training_run(cfg: DictConfig, tracker: RunTracker, *, predictions: pl.DataFrame,
                        splitter: CombinatorialPurgedKFold, t: np.ndarray, folds: Sequence[int],
                        bars: pl.DataFrame, data_label: str, output_dir: Path) -> RunOutcome:
    """Evaluate the run, log metrics, gates and report to MLflow, write them beside the outputs.

    ``predictions`` are the folds' out-of-sample predictions with their per-fold metrics as columns:
    conditioning metrics are averaged over folds, simulator counts summed, and the model's parameter
    counts are the first fold's (every fold builds the same network).
    """
    tracker.set_tags({TRIAL_TAG: "1"})  # a trial of the sweep from here on, however the run ends
    counts = {c[len(PARAMS_PREFIX):]: int(predictions[c][0]) for c in predictions.columns
              if c.startswith(PARAMS_PREFIX)}
    budget_table = format_budget_table(counts, OmegaConf.to_container(cfg.model.budget, resolve=True))
    predictions = predictions.drop(f"{PARAMS_PREFIX}{k}" for k in counts)
    pred_path = output_dir / PREDICTIONS_ARTIFACT
    predictions.write_parquet(pred_path)
    tracker.log_artifact(pred_path)
    tracker.log_metrics(fold_means(predictions, COND_PREFIXES) | fold_sums(predictions, (SIM_PREFIX,)))
    catalogue = run_metrics(cfg)
    gates = gates_from_config(OmegaConf.to_container(cfg.validation.gates, resolve=True), known=catalogue.known)
    settings = stats_settings(cfg)
    baselines = OmegaConf.to_container(cfg.validation.baselines, resolve=True)
    backtest = build(cfg.backtest)

    signals = add_baseline_signals(predictions, baselines, bars, tracker.client)
    returns = path_returns(signals, splitter, t, folds, backtest, external=external_returns(baselines))
    returns.write_parquet(output_dir / RETURNS_ARTIFACT)
    tracker.log_artifact(output_dir / RETURNS_ARTIFACT)
    tracker.log_metrics({TRIAL_SHARPE: path_average_sharpe(returns, settings.periods_per_year)})
    trials = trials_from_config(cfg.validation.stats) or trials_of_sweep(tracker, settings.periods_per_year)
    evidence = evaluate_paths(returns, baselines["primary"], trials, settings)
    folds_table = fold_rows(predictions, splitter, folds)
    own = evidence.metrics | {"oos/loss": float(np.mean([r["oos loss"] for r in folds_table]))}
    own |= {f"params/{k}": float(v) for k, v in counts.items()}
    tracker.log_metrics({k: v for k, v in own.items() if math.isfinite(v)})
    tracker.set_tags({"dsr.trials_source": trials.source})

    metrics = tracker.metrics() | own
    results = evaluate_gates(gates, metrics, catalogue.never)
    tracker.log_metrics(gate_metrics(results))
    tracker.set_tags(gate_tags(results))

    run_line = (f"MLflow run {tracker.run_id} in experiment '{cfg.logger.mlflow.experiment_name}'\n"
                f"  look at it: mlflow ui --backend-store-uri {tracker.tracking_uri}")
    summary = "\n\n".join([
        f"Data: {data_label}",
        format_table(folds_table, "Out-of-sample results per fold"),
        format_table(_console_rows(evidence.path_rows), f"CPCV paths (net of costs), tests vs {baselines['primary']}; "
                     "row 'mean' = path-average series"),
        format_table(evidence.baseline_rows, "Baselines on the same paths"),
        f"Parameters\n{budget_table}",
        "\n".join([format_table(gate_rows(results), "Gates"), *left_out_notes(results)]),
        run_line,
    ])
    (output_dir / "summary.txt").write_text(summary + "\n")
    tracker.log_artifact(output_dir / "summary.txt")

    prices = bars.filter(pl.col("ts").is_between(predictions["ts"].min(), predictions["ts"].max()))
    regimes = (predictions.select("ts", "symbol", "regime").unique(["ts", "symbol"])
               if "regime" in predictions.columns else None)
    files = write_run_report(
        output_dir / "report", title=f"DualHRQ run {tracker.run_id[:8]}: {cfg.task_name}",
        intro=f"Data: {data_label}. {trials.source}. MLflow {tracker.tracking_uri}, run {tracker.run_id}.",
        evidence=evidence, returns=returns, prices=prices, regimes=regimes, gates=results, fold_rows=folds_table,
        budget_table=budget_table, config_yaml=OmegaConf.to_yaml(cfg, resolve=True),
        rolling_window=int(cfg.validation.report.rolling_window), periods_per_year=settings.periods_per_year)
    tracker.log_artifact(files.html, "report")
    for png in files.plots:
        tracker.log_artifact(png, "plots")
    print("\n" + summary + f"\n  report: {files.html}", flush=True)
    return RunOutcome(metrics=metrics, gates=results, summary=summary)


def raise_on_failed_gates(cfg: DictConfig, outcome: RunOutcome, run_id: str) -> None:
    """``validation.strict=true``: a gate that failed or could not be evaluated fails the job (after it is
    fully logged); a verdict that was never reached does not pass."""
    bad = unmet(outcome.gates)
    if cfg.validation.strict and bad:
        raise GatesFailed(f"validation.strict=true and {len(bad)} gate(s) did not pass: "
                          f"{', '.join(f'{r.gate.name} ({r.status})' for r in bad)} "
                          f"(see the gates table above; run {run_id})")


def _per_fold(predictions: pl.DataFrame, prefixes: tuple[str, ...]) -> pl.DataFrame:
    """One row per fold of the per-fold metric columns starting with one of ``prefixes``."""
    cols = [c for c in predictions.columns if c.startswith(prefixes)]
    return predictions.group_by("fold").agg(pl.col(c).first() for c in cols).drop("fold")


def fold_means(predictions: pl.DataFrame, prefixes: tuple[str, ...]) -> dict[str, float]:
    """Run-level value of each per-fold metric (rates, bits, latencies): the mean over folds."""
    return {c: float(v.mean()) for c, v in _per_fold(predictions, prefixes).to_dict().items()}


def fold_sums(predictions: pl.DataFrame, prefixes: tuple[str, ...]) -> dict[str, float]:
    """Run-level value of each per-fold count (fills, rejections, violations): the sum over folds."""
    return {c: float(v.sum()) for c, v in _per_fold(predictions, prefixes).to_dict().items()}


def _console_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Path rows for the console: the confidence bounds folded into one 'lo..hi' column each."""
    out = []
    for r in rows:
        row = {k: v for k, v in r.items() if k not in ("sharpe lo", "sharpe hi", "dd lo", "dd hi")}
        row["sharpe CI"] = f"{r['sharpe lo']:.2f}..{r['sharpe hi']:.2f}"
        row["dd CI"] = f"{r['dd lo']:.3f}..{r['dd hi']:.3f}"
        out.append(row)
    return out
