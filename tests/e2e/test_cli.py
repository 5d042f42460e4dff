"""The command line as a user types it: config printing, override errors, sweeps, resume, DDP."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from .conftest import REPO, run_cli, runs_of, tiny_overrides


def test_cfg_job_prints_the_composed_experiment(tmp_path):
    res = run_cli(["dualhrq.train", "+experiment=regime_film", "--cfg", "job"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "_target_: dualhrq.models.conditioning.RegimeConditioner" in res.stdout  # model/conditioning=regime
    assert "dim: 576" in res.stdout and "task_name: regime_film" in res.stdout


def test_unknown_key_is_refused_by_hydra(tmp_path):
    res = run_cli(["dualhrq.train", "+experiment=regime_film", "model.net.widht=3"], cwd=tmp_path)
    assert res.returncode != 0
    assert "Could not override 'model.net.widht'" in res.stderr
    assert not (tmp_path / "mlruns.db").exists()


def test_bad_value_is_refused_with_one_message(tmp_path):
    res = run_cli(["dualhrq.train", "+experiment=regime_film", "model.conditioning=regim",
                   f"hydra.run.dir={tmp_path}/out"], cwd=tmp_path)
    assert res.returncode == 2
    assert "model.conditioning" in res.stderr + res.stdout
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "mlruns.db").exists()


def test_param_count_cli_prints_the_table_and_enforces_the_budget(tmp_path):
    ok = run_cli(["dualhrq.tools.param_count", "model=hrm_27m", "--strict"], cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "l_module" in ok.stdout and "26,910,281" in ok.stdout
    over = run_cli(["dualhrq.tools.param_count", "model=hrm_27m", "model.budget.l_module.max=1e6", "--strict"],
                   cwd=tmp_path)
    assert over.returncode == 1
    assert "l_module" in over.stderr and "OVER" in over.stdout
    lenient = run_cli(["dualhrq.tools.param_count", "model=hrm_27m", "model.budget.l_module.max=1e6"], cwd=tmp_path)
    assert lenient.returncode == 0


@pytest.mark.slow
def test_sweep_logs_one_run_per_job_in_one_experiment(tmp_path):
    res = run_cli(["dualhrq.train", "-m", *tiny_overrides(tmp_path), "task_name=sweep", "validation.folds=[0]",
                   "model/conditioning=none,regime", f"hydra.sweep.dir={tmp_path}/multirun"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    runs = runs_of(tmp_path, "sweep")
    assert sorted(r.data.tags["override.model/conditioning"] for r in runs) == ["none", "regime"]
    assert all(r.info.status == "FINISHED" for r in runs)
    # each job counts both trials of the sweep for its DSR, the first to finish too
    assert [(r.data.metrics["dsr/n_trials"], r.data.tags["sweep.jobs"]) for r in runs] == [(2.0, "2")] * 2
    assert {r.data.tags["sweep.dir"] for r in runs} == {str((tmp_path / "multirun").resolve())}
    params = {r.data.tags["override.model/conditioning"]: r.data.params for r in runs}
    assert params["none"]["model.conditioning.module"] == "None"
    assert params["regime"]["model.conditioning.module._target_"] == "dualhrq.models.conditioning.RegimeConditioner"


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_finishes_with_one_run(tmp_path):
    res = run_cli(["dualhrq.train", *tiny_overrides(tmp_path), "trainer=ddp_cpu", "task_name=ddp",
                   "validation.folds=[0]", f"hydra.run.dir={tmp_path}/out"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = runs_of(tmp_path, "ddp")
    assert run.info.status == "FINISHED"
    assert run.data.params["trainer.strategy"] == "ddp" and run.data.params["trainer.devices"] == "2"
    assert "fold0-oos/sharpe" in run.data.metrics


@pytest.mark.slow
def test_mlflow_run_of_the_project_logs_into_the_run_it_opens(tmp_path):
    shutil.copy(REPO / "MLproject", tmp_path / "MLproject")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path}/mlruns.db"
    mlflow = Path(sys.executable).with_name("mlflow")
    res = subprocess.run([str(mlflow), "run", str(tmp_path), "-e", "train", "--env-manager", "local",
                          "--experiment-name", "project", "-P", "model=hrm_tiny", "-P", "max_steps=2",
                          "-P", "folds=[0]"],  # one fold of the bundled data: the test is about the run, not folds
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    assert len(runs) == 1
    (run,) = runs
    assert run.info.status == "FINISHED"
    assert run.data.tags["override.model/conditioning"] == "regime" and "oos/sharpe" in run.data.metrics
    assert run.data.tags["override.validation.folds"] == "[0]" and "fold1-oos/sharpe" not in run.data.metrics
    assert run.data.params["model.conditioning.module._target_"] == "dualhrq.models.conditioning.RegimeConditioner"
