"""Champion against challenger on the same CPCV paths: the evidence a promotion is decided on.

Both versions' training runs left their out-of-sample predictions per fold.
The challenger's run config rebuilds its data, splitter and backtest; the
champion's signal joins as a strategy on the same (fold, date, symbol) rows,
which exist only when both runs used the same data, splitter and folds. Both
are then replayed on every CPCV path by the same backtest and compared with
Hansen's SPA (challenger against champion, the champion as the benchmark;
Hansen 2005, "A Test for Superior Predictive Ability"). The challenger is
promoted only when SPA rejects "no better than the champion" at ``level``,
its path-average Sharpe is higher, and none of its run's gates failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from dualhrq.config import build, load_recorded, located
from dualhrq.errors import DataError
from dualhrq.evaluation.run_end import stats_settings
from dualhrq.primitives.tables import format_table
from dualhrq.registry.package import run_artifact
from dualhrq.training.datamodule import MarketDataModule
from dualhrq.validation.baselines import PREDICTIONS_ARTIFACT
from dualhrq.validation.evidence import Trials, evaluate_paths
from dualhrq.validation.gates import FAIL
from dualhrq.validation.oos import path_returns

CHAMPION = "champion"
FINISHED = "versions registered from finished training runs"
SAME_PATHS = ("data", "validation.splitter", "validation.folds", "validation.val_fraction", "backtest")


@dataclass(frozen=True)
class Comparison:
    promote: bool
    spa_pvalue: float
    level: float
    rows: list[dict[str, Any]]
    reasons: list[str]  # why it is refused; empty when promoted

    def table(self, champion: str, challenger: str) -> str:
        verdict = "PROMOTE" if self.promote else "REFUSE: " + "; ".join(self.reasons)
        title = (f"Challenger {challenger} against champion {champion} on the same CPCV paths "
                 f"(SPA level {self.level:g}): {verdict}")
        return format_table(self.rows, title)


def compare_runs(client: MlflowClient, champion_run: str, challenger_run: str, level: float, workdir: Path,
                 trusted: tuple[str, ...] = ()) -> Comparison:
    """Replay both runs' out-of-sample signals on the challenger's CPCV paths and test the challenger."""
    cfg = _config(client, challenger_run, workdir / "challenger", trusted)
    champion_cfg = _config(client, champion_run, workdir / "champion", trusted)
    differ = [key for key in SAME_PATHS if OmegaConf.select(cfg, key) != OmegaConf.select(champion_cfg, key)]
    if differ:
        raise DataError(f"the champion's run {champion_run} and the challenger's run {challenger_run} differ in "
                        f"{differ}, so they were not tested on the same CPCV paths. Fix: train the challenger "
                        "with the champion's data, validation and backtest settings.")
    challenger = _predictions(client, challenger_run, workdir / "challenger")
    champion = _predictions(client, champion_run, workdir / "champion").select(
        "fold", "ts", "symbol", pl.col("signal").alias(f"baseline:{CHAMPION}"))
    signals = challenger.join(champion, on=["fold", "ts", "symbol"], how="left")
    if signals[f"baseline:{CHAMPION}"].null_count():
        raise DataError(f"the champion's run {champion_run} has no signal for "
                        f"{signals[f'baseline:{CHAMPION}'].null_count()} of the challenger's out-of-sample rows. "
                        "Fix: compare runs made with the same data, splitter and folds.")
    dm: MarketDataModule = build(cfg.data)
    with located(cfg.data):
        t = dm.prepare().t
    folds = sorted(signals["fold"].unique().to_list())
    returns = path_returns(signals, build(cfg.validation.splitter), t, folds, build(cfg.backtest))
    evidence = evaluate_paths(returns, CHAMPION, Trials(1, 0.0, "champion against challenger"), stats_settings(cfg))
    m = evidence.metrics
    spa = float(m["oos/spa_pvalue"])
    champion_sharpe = m["baseline/sharpe"]
    rows = [
        {"": "Sharpe (mean over paths)", "champion": champion_sharpe, "challenger": m["oos/sharpe"]},
        {"": "max drawdown (worst path)", "champion": m[f"baseline/{CHAMPION}/max_drawdown"],
         "challenger": m["oos/max_drawdown"]},
        {"": "SPA p (challenger better)", "champion": "", "challenger": spa},
        {"": "Reality Check p", "champion": "", "challenger": m["oos/rc_pvalue"]},
    ]
    gates = _gates(client, challenger_run)
    rows += [{"": name, "champion": "", "challenger": status} for name, status in sorted(gates.items())]
    reasons = []
    if not spa < level:
        reasons.append(f"SPA p {spa:.3g} is not below the level {level:g}")
    if not m["oos/sharpe"] > champion_sharpe:
        reasons.append("its Sharpe is not higher")
    failed = [name for name, status in gates.items() if status == FAIL]
    if failed:
        reasons.append(f"gates failed: {', '.join(failed)}")
    return Comparison(promote=not reasons, spa_pvalue=spa, level=level, rows=rows, reasons=reasons)


def _config(client: MlflowClient, run_id: str, workdir: Path, trusted: tuple[str, ...]) -> DictConfig:
    return load_recorded(run_artifact(client, run_id, "config.yaml", workdir, FINISHED), trusted)


def _predictions(client: MlflowClient, run_id: str, workdir: Path) -> pl.DataFrame:
    return pl.read_parquet(run_artifact(client, run_id, PREDICTIONS_ARTIFACT, workdir, FINISHED))


def _gates(client: MlflowClient, run_id: str) -> dict[str, str]:
    tags = client.get_run(run_id).data.tags
    return {k: v for k, v in tags.items() if k.startswith("gate.")}
