"""Sweep comparison and sweep trials over a real MLflow store filled with hand-made runs."""

import math
import zlib
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from mlflow.entities import Metric, RunTag
from mlflow.tracking import MlflowClient

from dualhrq.primitives.returns import sharpe_ratio
from dualhrq.report.__main__ import main
from dualhrq.report.sweep import compare_sweep
from dualhrq.tracking.sweep import (
    SWEEP_JOBS_TAG,
    SWEEP_TAG,
    TRIAL_TAG,
    count_trials,
    planned_sweep,
    sweep_trials,
    trial_runs,
)
from dualhrq.validation import statistics as st

T = 400
DAYS = [datetime(2019, 1, 1) + timedelta(days=i) for i in range(T)]
MARKET = np.random.default_rng(0).normal(0.0002, 0.01, T)


def _log_run(client, exp, tmp_path, name, edge, tags=(), status="FINISHED"):
    """A run that reached evaluation with two CPCV paths of returns; it logs the mean of the paths' Sharpe
    ratios and the Sharpe ratio of their average."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    paths = [MARKET * 0.3 + rng.normal(edge, 0.006, T) for _ in range(2)]
    frame = pl.concat([pl.DataFrame({"ts": DAYS, "path": p, "strategy": s, "net": net})
                       for p, net in enumerate(paths) for s, net in (("model", net), ("buy_and_hold", MARKET))])
    run = client.create_run(exp, run_name=name, tags={"override.model/conditioning": name, TRIAL_TAG: "1",
                                                      **dict(tags)})
    rid = run.info.run_id
    folder = tmp_path / rid
    folder.mkdir()
    frame.write_parquet(folder / "cpcv_returns.parquet")
    client.log_artifact(rid, str(folder / "cpcv_returns.parquet"))
    sharpe = sharpe_ratio(np.mean(paths, axis=0))
    client.log_batch(rid, metrics=[Metric("oos/sharpe", float(np.mean([sharpe_ratio(x) for x in paths])), 0, 0),
                                   Metric("oos/sharpe_path_average", sharpe, 0, 0)],
                     tags=[RunTag("gate.spa", "PASS" if edge > 0.001 else "FAIL")])
    if status != "RUNNING":
        client.set_terminated(rid, status)
    return rid, np.mean(paths, axis=0), sharpe


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("sweep")
    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns.db")
    exp = client.create_experiment("sw", artifact_location=str(tmp_path / "art"))
    runs = {name: _log_run(client, exp, tmp_path, name, edge)
            for name, edge in (("none", 0.0), ("regime", 0.0025), ("puzzle_id", 0.0005))}
    return client, runs, tmp_path


def test_best_run_is_deflated_by_the_sweep_and_stepm_matches_arch(store):
    client, runs, _ = store
    c = compare_sweep(client, "sw", size=0.05, reps=200, seed=3)
    # the DSR tests the path-average series' Sharpe ratio: the trials' variance is of that statistic too
    sharpes = {k: sharpe_ratio(v[1]) for k, v in runs.items()}
    per_period = np.array(list(sharpes.values())) / math.sqrt(252)
    assert c.trials.n == 3 and c.trials.sr_variance == pytest.approx(per_period.var(ddof=1))
    best = max(sharpes, key=sharpes.get)
    assert best == "regime" and c.best.startswith("model/conditioning=regime")
    average = runs[best][1]
    assert c.best_dsr == pytest.approx(st.deflated_sharpe_ratio(average, 3, per_period.var(ddof=1)))
    assert c.best_psr == pytest.approx(st.probabilistic_sharpe_ratio(average)) and c.best_dsr < c.best_psr
    names = list(c.series)
    matrix = np.column_stack([c.series[n]["model"].to_numpy() for n in names])
    expected = st.stepwise_superior_models(matrix, MARKET, size=0.05, reps=200, seed=3)
    assert c.superior == [names[i] for i in expected]
    assert any(s.startswith("model/conditioning=regime") for s in c.superior)
    assert {r["gate spa"] for r in c.rows} == {"PASS", "FAIL"}


def test_cli_prints_the_table_and_writes_the_report(store, capsys):
    _, _, tmp_path = store
    uri = f"sqlite:///{tmp_path}/mlruns.db"
    assert main(["experiment=sw", f"tracking_uri={uri}", f"out={tmp_path}/sweep.html", "reps=100"]) == 0
    out = capsys.readouterr().out
    assert "Runs of experiment 'sw'" in out and "DSR deflated by the 3-trial sweep" in out
    html = (tmp_path / "sweep.html").read_text()
    assert "<table id='runs'>" in html and html.count("data:image/png;base64,") == 1
    assert main(["experiment=missing", f"tracking_uri={uri}"]) == 2
    assert main(["experimnt=sw"]) == 2
    assert main(["experiment=sw", "reps=x"]) == 2
    assert "experiment" in capsys.readouterr().err


def test_trials_are_the_parent_runs_children_else_the_experiment(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns.db")
    exp = client.create_experiment("e", artifact_location=str(tmp_path / "art"))
    parent = client.create_run(exp).info.run_id
    kids = [_log_run(client, exp, tmp_path, f"k{i}", 0.001, {"mlflow.parentRunId": parent}) for i in range(3)]
    loner = _log_run(client, exp, tmp_path, "loner", 0.001)
    trials = sweep_trials(client, kids[0][0])
    assert trials.launched == 3 and parent in trials.where
    assert sorted(trials.sharpes) == sorted(k[2] for k in kids)
    trials = sweep_trials(client, loner[0])
    assert trials.launched == 4  # the parent itself never reached evaluation


def test_every_launched_trial_counts_whatever_the_order_the_runs_end_in(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns.db")
    exp = client.create_experiment("e", artifact_location=str(tmp_path / "art"))
    sweep = {SWEEP_TAG: "/multirun/x", SWEEP_JOBS_TAG: "4"}
    first = _log_run(client, exp, tmp_path, "j0", 0.001, sweep)[0]
    # the first job of a 4-job sweep to reach evaluation already counts the 4
    assert sweep_trials(client, first).launched == 4
    _log_run(client, exp, tmp_path, "j1", 0.001, sweep, status="FAILED")
    _log_run(client, exp, tmp_path, "j2", 0.001, sweep, status="KILLED")
    still = _log_run(client, exp, tmp_path, "j3", 0.001, sweep, status="RUNNING")[0]
    assert [sweep_trials(client, r).launched for r in (first, still)] == [4, 4]
    assert len(sweep_trials(client, first).sharpes) == 4  # failed and killed runs' statistics count too
    # a run that failed before its evaluation began is no trial; runs outside the sweep count once each
    client.set_terminated(client.create_run(exp).info.run_id, "FAILED")
    _log_run(client, exp, tmp_path, "alone", 0.0, status="FAILED")
    assert sweep_trials(client, first).launched == 5
    # finishing order does not matter: the count over any subset of a sweep's jobs is the planned size
    runs = trial_runs(client, exp)
    assert all(count_trials([r for r in runs if r.info.run_name != skip]) == 5 for skip in ("j0", "j1", "j2"))


def test_the_planned_size_of_a_hydra_multirun(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.types import RunMode
    from omegaconf import OmegaConf, open_dict

    from dualhrq.config import CONF_DIR

    def hydra_node(task, params=None, target=None):
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name="train", overrides=["model=hrm_tiny"], return_hydra_config=True)
        with open_dict(cfg):
            cfg.hydra.mode, cfg.hydra.runtime.cwd, cfg.hydra.sweep.dir = RunMode.MULTIRUN, str(tmp_path), "m"
            cfg.hydra.overrides.task, cfg.hydra.sweeper.params = task, params
            cfg.hydra.sweeper._target_ = target or cfg.hydra.sweeper._target_
        (tmp_path / "m").mkdir(exist_ok=True)
        OmegaConf.save(cfg, tmp_path / "m" / "multirun.yaml")  # as Hydra's sweeper does before the first job
        return cfg.hydra

    where = str((tmp_path / "m").resolve())
    assert planned_sweep(hydra_node(["seed=1,2,3", "model/conditioning=none,regime", "model=hrm_tiny"])) == {
        SWEEP_TAG: where, SWEEP_JOBS_TAG: "6"}
    assert planned_sweep(hydra_node(["seed=range(0,5)"], {"data.batch_size": "16,32"}))[SWEEP_JOBS_TAG] == "10"
    # another sweeper plans its own trials: the sweep is named, its size left to the runs seen
    assert planned_sweep(hydra_node(["seed=1,2"], target="some.OtherSweeper")) == {SWEEP_TAG: where}
    node = hydra_node(["seed=1,2"])
    with open_dict(node):
        node.mode = RunMode.RUN
    assert planned_sweep(node) == {}
