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
from dualhrq.tracking.sweep import sweep_siblings
from dualhrq.validation import statistics as st

T = 400
DAYS = [datetime(2019, 1, 1) + timedelta(days=i) for i in range(T)]
MARKET = np.random.default_rng(0).normal(0.0002, 0.01, T)


def _log_run(client, exp, tmp_path, name, edge, tags=()):
    """A finished run with two CPCV paths of returns; its logged Sharpe is the mean of the paths'."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    paths = [MARKET * 0.3 + rng.normal(edge, 0.006, T) for _ in range(2)]
    frame = pl.concat([pl.DataFrame({"ts": DAYS, "path": p, "strategy": s, "net": net})
                       for p, net in enumerate(paths) for s, net in (("model", net), ("buy_and_hold", MARKET))])
    run = client.create_run(exp, run_name=name, tags={"override.model/conditioning": name, **dict(tags)})
    rid = run.info.run_id
    folder = tmp_path / rid
    folder.mkdir()
    frame.write_parquet(folder / "cpcv_returns.parquet")
    client.log_artifact(rid, str(folder / "cpcv_returns.parquet"))
    sharpe = float(np.mean([sharpe_ratio(x) for x in paths]))
    client.log_batch(rid, metrics=[Metric("oos/sharpe", sharpe, 0, 0)],
                     tags=[RunTag("gate.spa", "PASS" if edge > 0.001 else "FAIL")])
    client.set_terminated(rid)
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
    sharpes = {k: v[2] for k, v in runs.items()}
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
    assert "Runs of experiment 'sw'" in out and "DSR deflated by the 3-run sweep" in out
    html = (tmp_path / "sweep.html").read_text()
    assert "<table id='runs'>" in html and html.count("data:image/png;base64,") == 1
    assert main(["experiment=missing", f"tracking_uri={uri}"]) == 2
    assert main(["experimnt=sw"]) == 2
    assert main(["experiment=sw", "reps=x"]) == 2
    assert "experiment" in capsys.readouterr().err


def test_siblings_are_the_parent_runs_children_else_the_experiment(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns.db")
    exp = client.create_experiment("e", artifact_location=str(tmp_path / "art"))
    parent = client.create_run(exp).info.run_id
    kids = [_log_run(client, exp, tmp_path, f"k{i}", 0.001, {"mlflow.parentRunId": parent})[0] for i in range(3)]
    loner = _log_run(client, exp, tmp_path, "loner", 0.001)[0]
    siblings, where = sweep_siblings(client, kids[0])
    assert sorted(r.info.run_id for r in siblings) == sorted(kids[1:]) and parent in where
    siblings, _ = sweep_siblings(client, loner)
    assert sorted(r.info.run_id for r in siblings) == sorted(kids)  # the parent has no oos/sharpe
