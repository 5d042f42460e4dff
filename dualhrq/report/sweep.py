"""Sweep-level comparison: the runs of one MLflow experiment side by side, deflated by the sweep's size.

The best run's Sharpe ratio is the maximum of ``N`` tries, so it is judged
with the Deflated Sharpe Ratio using ``N`` = the trials launched in the
experiment (finished or not, a Hydra multirun's planned jobs counted in
full) and the variance of their per-period path-average Sharpe ratios
(Bailey & López de Prado 2014); the best run is the finished run with the
highest path-average Sharpe ratio, the statistic the DSR tests. Romano &
Wolf's StepM (via arch) then names the runs that beat the primary baseline
with the familywise error controlled across the sweep.
Both use each run's path-average out-of-sample returns (``cpcv_returns.parquet``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from matplotlib.figure import Figure
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from dualhrq.errors import DataError
from dualhrq.report.html import image, page, table
from dualhrq.report.plots import save_png
from dualhrq.tracking.sweep import SWEEP_TAG, count_trials, finished_runs, trial_runs
from dualhrq.validation.evidence import MODEL, TRIAL_SHARPE, Trials, path_average, trials_from_sharpes
from dualhrq.validation.gates import NOT_EVALUATED
from dualhrq.validation.oos import RETURNS_ARTIFACT
from dualhrq.validation.statistics import deflated_sharpe_ratio, probabilistic_sharpe_ratio, stepwise_superior_models

KEY_METRICS = {TRIAL_SHARPE: "path-avg sharpe", "oos/sharpe": "sharpe", "oos/sharpe_min": "worst path",
               "oos/sharpe_std": "path std",
               "oos/psr": "psr", "oos/dsr": "dsr (at its end)", "oos/spa_pvalue": "spa p", "oos/rc_pvalue": "rc p",
               "oos/max_drawdown": "max dd", "oos/sharpe_improvement": "improvement"}


@dataclass(frozen=True)
class SweepComparison:
    experiment: str
    rows: list[dict[str, Any]]
    trials: Trials
    best: str
    best_sharpe: float
    best_psr: float | None
    best_dsr: float | None
    superior: list[str] | None  # StepM's runs; None when fewer than one run has returns to test
    stepm_runs: int
    series: dict[str, pl.DataFrame]  # label -> [ts, model, benchmark] path-average returns


def run_labels(runs: list[Run]) -> list[str]:
    """Each run labelled by the overrides that differ between the runs (a sweep's axes), else its name."""
    keys = sorted({k for r in runs for k in r.data.tags if k.startswith("override.")})
    varying = [k for k in keys if len({r.data.tags.get(k) for r in runs}) > 1]
    labels = []
    for r in runs:
        label = " ".join(f"{k.removeprefix('override.')}={r.data.tags.get(k, '-')}" for k in varying)
        labels.append(f"{label or r.info.run_name or r.info.run_id[:8]} [{r.info.run_id[:8]}]")
    return labels


def _path_average(client: MlflowClient, run: Run) -> pl.DataFrame | None:
    """``[ts, model, benchmark]``: the run's path-average returns and its primary baseline's, if it logged them."""
    try:
        local = client.download_artifacts(run.info.run_id, RETURNS_ARTIFACT)
    except (MlflowException, OSError):
        return None
    primary = run.data.params.get("validation.baselines.primary", "buy_and_hold")
    average = path_average(pl.read_parquet(Path(local)))
    model = average.filter(pl.col("strategy") == MODEL).select("ts", model="net")
    bench = average.filter(pl.col("strategy") == primary).select("ts", benchmark="net")
    return model.join(bench, on="ts", how="inner").sort("ts")


def compare_sweep(client: MlflowClient, experiment: str, *, sweep: str | None = None, size: float = 0.05,
                  reps: int = 500, seed: int = 0) -> SweepComparison:
    """Table, DSR of the best run deflated by the sweep and StepM over the finished runs of ``experiment``;
    with ``sweep``, only the runs of that Hydra multirun directory (whatever launcher ran them), while the
    DSR still counts every trial of the experiment."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise DataError(f"experiment={experiment!r}: no such MLflow experiment in {client.tracking_uri}; "
                        "pass the task_name the runs were trained with, and tracking_uri= if not the default")
    runs = finished_runs(client, exp.experiment_id)
    if sweep is not None:
        where = str(Path(sweep).resolve())
        runs = [r for r in runs if r.data.tags.get(SWEEP_TAG) == where]
        if not runs:
            raise DataError(f"sweep={sweep}: no finished runs of experiment {experiment!r} were launched from the "
                            f"multirun directory {where}; pass the sweep's hydra.sweep.dir")
    if not runs:
        raise DataError(f"experiment={experiment!r} has no finished training runs with out-of-sample metrics")
    labels = run_labels(runs)
    gate_names = sorted({k.removeprefix("gate.") for r in runs for k in r.data.tags if k.startswith("gate.")})
    rows = []
    for label, r in zip(labels, runs):
        m = r.data.metrics
        row: dict[str, Any] = {"run": label, **{short: m.get(k) for k, short in KEY_METRICS.items()}}
        statuses = [r.data.tags.get(f"gate.{g}", NOT_EVALUATED) for g in gate_names]
        row["gates pass/fail/n.e."] = "/".join(str(sum(s == x for s in statuses))
                                               for x in ("PASS", "FAIL", NOT_EVALUATED))
        row |= {f"gate {g}": s for g, s in zip(gate_names, statuses)}
        rows.append(row)
    ppy = int(runs[0].data.params.get("backtest.periods_per_year", 252))
    tried = trial_runs(client, exp.experiment_id)
    launched = count_trials(tried)
    trials = trials_from_sharpes([r.data.metrics[TRIAL_SHARPE] for r in tried if TRIAL_SHARPE in r.data.metrics],
                                 ppy, launched=launched, source=f"{launched} trials of experiment {experiment!r}")
    order = np.argsort([-r.data.metrics[TRIAL_SHARPE] for r in runs])
    best = int(order[0])
    series = {labels[i]: s for i, r in enumerate(runs) if (s := _path_average(client, r)) is not None}
    best_psr = best_dsr = None
    if labels[best] in series:
        returns = series[labels[best]]["model"].to_numpy()
        best_psr = probabilistic_sharpe_ratio(returns)
        best_dsr = deflated_sharpe_ratio(returns, trials.n, trials.sr_variance)
    superior = None
    if series:
        names = list(series)
        wide = series[names[0]].select("ts", "benchmark")
        for i, name in enumerate(names):
            wide = wide.join(series[name].select("ts", pl.col("model").alias(f"m{i}")), on="ts", how="inner")
        found = stepwise_superior_models(wide.select(f"m{i}" for i in range(len(names))).to_numpy(),
                                         wide["benchmark"].to_numpy(), size=size, reps=reps, seed=seed)
        superior = [names[i] for i in found]
    return SweepComparison(experiment=experiment, rows=rows, trials=trials, best=labels[best],
                           best_sharpe=runs[best].data.metrics[TRIAL_SHARPE], best_psr=best_psr, best_dsr=best_dsr,
                           superior=superior, stepm_runs=len(series), series=series)


def summary_lines(c: SweepComparison, size: float) -> list[str]:
    """The sweep's verdict in words: the deflated best run and StepM's superior runs."""
    lines = [f"trials: {c.trials.n} launched, variance of their per-period path-average Sharpe "
             f"{c.trials.sr_variance:.3g}",
             f"best run: {c.best}, path-average Sharpe {c.best_sharpe:.3f}"]
    if c.best_dsr is None:
        lines.append("  its returns (cpcv_returns.parquet) are not in MLflow: no DSR")
    else:
        lines.append(f"  PSR {c.best_psr:.4f}; DSR deflated by the {c.trials.n}-trial sweep {c.best_dsr:.4f}")
    if c.superior is not None:
        lines.append(f"StepM at familywise error {size:g} over {c.stepm_runs} runs: "
                     + (", ".join(c.superior) if c.superior else "no run beats the primary baseline"))
    return lines


def write_sweep_report(c: SweepComparison, out: Path, size: float) -> Path:
    """One HTML page: the runs table, the verdict, path-average equity of every run against the baseline."""
    out.parent.mkdir(parents=True, exist_ok=True)
    sections = [("Runs", table(c.rows, table_id="runs")),
                ("Verdict", "<ul>" + "".join(f"<li>{line}</li>" for line in summary_lines(c, size)) + "</ul>")]
    if c.series:
        fig = Figure(figsize=(9, 3.6))
        ax = fig.subplots()
        for label, s in c.series.items():
            ax.plot(s["ts"].to_numpy(), np.cumprod(1 + s["model"].to_numpy()), lw=0.9, label=label)
        first = next(iter(c.series.values()))
        ax.plot(first["ts"].to_numpy(), np.cumprod(1 + first["benchmark"].to_numpy()), color="black", lw=1,
                label="primary baseline")
        ax.set_ylabel("growth of 1")
        ax.set_title("Path-average equity of each run")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        png = save_png(fig, out.with_suffix(".equity.png"))
        sections.append(("Equity", image(png, "Path-average equity of each run")))
    out.write_text(page(f"DualHRQ sweep: {c.experiment}", sections,
                        intro=f"{len(c.rows)} finished runs of {c.trials.n} trials launched; DSR deflated by "
                              "the trials launched."))
    return out

