"""Comparison table of a conditioning ablation, written into MLflow.

Reads the finished runs of one experiment (the latest per ``model/conditioning``
variant, from the sweep's ``override.model/conditioning`` tag), re-assembles
each run's out-of-sample predictions into its CPCV paths with the run's own
splitter and backtest config, and writes
``ablation.md`` / ``ablation.csv`` (Sharpe per path, mean, MI with the symbol
and the calendar, regime switches per day, retrieval fail-open rate) as
artifacts of a summary run tagged ``ablation.summary``, with the table's
numbers as its metrics (``<variant>/sharpe_path<p>``, ...).

    python experiments/ablation_table.py --experiment conditioning_ablation
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from dualhrq.config import build
from dualhrq.primitives.tables import format_table
from dualhrq.validation.oos import assemble_paths

VARIANTS = ("none", "puzzle_id", "regime", "regime_rag")
COLUMNS = {"conditioning/mi_symbol_bits": "MI symbol (bits)", "conditioning/mi_weekday_bits": "MI weekday",
           "conditioning/mi_month_bits": "MI month", "regime/switches_per_day": "switches/day",
           "retrieval/fail_open_rate": "fail-open rate", "retrieval/latency_p99_ms": "retrieval p99 ms"}


def variant_rows(client: MlflowClient, experiment: str) -> list[dict]:
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise SystemExit(f"no MLflow experiment named {experiment!r}")
    runs = client.search_runs([exp.experiment_id], "attributes.status = 'FINISHED'", order_by=["start_time DESC"])
    latest = {}
    for run in runs:
        # the sweep's override; runs made before conditioning became a config group have it as a param
        variant = run.data.tags.get("override.model/conditioning", run.data.params.get("model.conditioning"))
        if variant in VARIANTS and "ablation.summary" not in run.data.tags and variant not in latest:
            latest[variant] = run
    rows = []
    for variant in VARIANTS:
        if variant not in latest:
            continue
        run = latest[variant]
        with tempfile.TemporaryDirectory() as tmp:
            preds = pl.read_parquet(client.download_artifacts(run.info.run_id, "oos_predictions.parquet", tmp))
            cfg = OmegaConf.load(client.download_artifacts(run.info.run_id, "config.yaml", tmp))
        splitter, backtest = build(cfg.validation.splitter), build(cfg.backtest)
        folds = sorted(preds["fold"].unique().to_list())
        paths = assemble_paths(preds, splitter, preds["ts"].to_numpy(), folds)
        sharpes = [backtest.run(p).sharpe for p in paths]
        m = run.data.metrics
        row = {"variant": variant, **{f"sharpe path {i}": s for i, s in enumerate(sharpes)},
               "sharpe mean": float(np.mean(sharpes)),
               **{label: m.get(key, float("nan")) for key, label in COLUMNS.items()},
               "run": run.info.run_id[:8]}
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="conditioning_ablation")
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlruns.db"))
    args = parser.parse_args()
    client = MlflowClient(args.tracking_uri)
    rows = variant_rows(client, args.experiment)
    if not rows:
        raise SystemExit(f"no finished runs with model/conditioning in {VARIANTS} in {args.experiment!r}")
    table = format_table(rows, f"Conditioning ablation ({args.experiment}): out-of-sample, net of costs")
    print(table)
    exp = client.get_experiment_by_name(args.experiment)
    summary = client.create_run(exp.experiment_id, run_name="ablation-summary", tags={"ablation.summary": "1"})
    run_id = summary.info.run_id
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "ablation.md").write_text(table + "\n")
        pl.DataFrame(rows).write_csv(Path(tmp) / "ablation.csv")
        client.log_artifact(run_id, str(Path(tmp) / "ablation.md"))
        client.log_artifact(run_id, str(Path(tmp) / "ablation.csv"))
    for row in rows:
        for key, value in row.items():
            if key not in ("variant", "run") and np.isfinite(value):
                name = re.sub(r"[^0-9A-Za-z]+", "_", key.replace("/", " per ")).strip("_")
                client.log_metric(run_id, f"{row['variant']}/{name}", float(value))
    client.set_terminated(run_id)
    print(f"table logged to MLflow run {run_id} (artifacts ablation.md, ablation.csv)")


if __name__ == "__main__":
    main()
