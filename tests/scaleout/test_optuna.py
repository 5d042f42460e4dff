"""hparams_search=regime_film_optuna: an Optuna study whose trials are training jobs, each an MLflow run that
records the study's n_trials as its sweep's planned size, so the DSR counts every trial from the first."""

from __future__ import annotations

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.types import RunMode
from omegaconf import OmegaConf, open_dict

from dualhrq.config import CONF_DIR
from dualhrq.tracking.sweep import SWEEP_JOBS_TAG, SWEEP_TAG, planned_sweep

from .conftest import job_args, run_train, runs_of

SEARCHED = ("model.optimizer.lr", "model.optimizer.weight_decay", "model.loss.risk_aversion", "model.net.l_cycles")


def hydra_node(tmp_path, *overrides: str):
    """The hydra node a trial of the search sees: the composed config in a multirun under ``tmp_path/m``."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["model=hrm_tiny", "hparams_search=regime_film_optuna",
                                                      *overrides], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.mode, cfg.hydra.runtime.cwd, cfg.hydra.sweep.dir = RunMode.MULTIRUN, str(tmp_path), "m"
    return cfg


def test_the_search_maximises_the_objective_over_its_space(tmp_path):
    cfg = hydra_node(tmp_path)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    assert sweeper.direction == "maximize" and cfg.objective == "oos/sharpe"
    assert sorted(sweeper.params) == sorted(SEARCHED)
    # every searched key is a number the job's config already holds
    assert all(isinstance(OmegaConf.select(cfg, key), int | float) for key in SEARCHED)


def test_a_trial_records_the_studys_planned_size(tmp_path):
    where = str((tmp_path / "m").resolve())
    assert planned_sweep(hydra_node(tmp_path).hydra) == {SWEEP_TAG: where, SWEEP_JOBS_TAG: "20"}
    assert planned_sweep(hydra_node(tmp_path, "hydra.sweeper.n_trials=8").hydra)[SWEEP_JOBS_TAG] == "8"
    # a grid sampler may stop before n_trials: the size is left to the runs seen
    grid = OmegaConf.create(OmegaConf.to_container(hydra_node(tmp_path).hydra))  # the node as a trial reads it
    grid.sweeper.sampler = {"_target_": "optuna.samplers.GridSampler", "_partial_": True}
    assert planned_sweep(grid) == {SWEEP_TAG: where}


@pytest.mark.slow
def test_each_trial_is_a_run_and_the_study_keeps_the_best(tmp_path):
    sweep_dir = tmp_path / "multirun"
    res = run_train(["-m", *job_args(tmp_path, "search"), "hparams_search=regime_film_optuna",
                     "hydra.sweeper.n_trials=3", "hydra.sweeper.n_jobs=3", "hydra/launcher=parallel",
                     "hydra.launcher.n_jobs=3", f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path)
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    runs = runs_of(f"sqlite:///{tmp_path}/mlruns.db", "search")
    assert len(runs) == 3 and {r.info.status for r in runs} == {"FINISHED"}
    assert {(r.data.tags[SWEEP_TAG], r.data.tags[SWEEP_JOBS_TAG]) for r in runs} == {(str(sweep_dir.resolve()), "3")}
    assert {r.data.metrics["dsr/n_trials"] for r in runs} == {3.0}
    for run in runs:  # the trial's sampled values are its overrides and the job's config
        for key in SEARCHED:
            assert float(run.data.tags[f"override.{key}"]) == pytest.approx(float(run.data.params[key]))
    # Optuna's best trial is the run with the highest objective MLflow holds
    best = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    top = max(runs, key=lambda r: r.data.metrics["oos/sharpe"])
    assert best["best_value"] == pytest.approx(top.data.metrics["oos/sharpe"], rel=1e-9)
    assert {k: float(v) for k, v in best["best_params"].items()} == pytest.approx(
        {k: float(top.data.params[k]) for k in SEARCHED})
