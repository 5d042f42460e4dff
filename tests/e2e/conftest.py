"""Compose the real config tree into a temporary directory and run the job on a tiny setup."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, open_dict

from dualhrq.config import CONF_DIR

REPO = CONF_DIR.parent


def tiny_overrides(tmp: Path) -> list[str]:
    """hrm_tiny on seven years of the bundled data, a few fp32 steps per fold, stores under ``tmp``."""
    return [
        "model=hrm_tiny",
        "data.source.start=2012-01-01",
        "data.batch_size=32",
        "trainer.max_steps=3",
        "trainer.precision=32-true",  # pinned figures must not depend on whether the CPU has native bf16
        "trainer.log_every_n_steps=1",
        "+trainer.enable_progress_bar=false",
        "~callbacks.progress_bar",
        "validation.stats.bootstrap_reps=50",
        f"logger.mlflow.tracking_uri=sqlite:///{tmp}/mlruns.db",
        f"logger.mlflow.artifact_location={tmp}/mlartifacts",
    ]


def compose_tiny(tmp: Path, extra: Sequence[str] = (), out: str = "out",
                 base: Sequence[str] | None = None) -> DictConfig:
    """The composed job config, as Hydra would build it, with outputs under ``tmp/out``; ``base`` replaces
    :func:`tiny_overrides`."""
    base = tiny_overrides(tmp) if base is None else base
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[*base, *extra], return_hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp / out)
        cfg.paths.root_dir = str(tmp)
        del cfg.hydra
    return cfg


def run_cli(args: Sequence[str], cwd: Path, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """``python -m <args>`` in ``cwd`` with the MLflow env of the caller removed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def runs_of(tmp: Path, experiment: str) -> list:
    client = MlflowClient(f"sqlite:///{tmp}/mlruns.db")
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id])


@pytest.fixture
def client_for():
    return lambda tmp: MlflowClient(f"sqlite:///{tmp}/mlruns.db")


def assert_catalogue_matches(run, cfg: DictConfig, external: Sequence[str] = ("ext/checked",)) -> None:
    """The run-level metrics ``run`` logged are those the catalogue lists for its combination
    (``dualhrq.evaluation.run_metrics``), less any metric without a finite value, which is not logged."""
    from dualhrq.evaluation.run_metrics import run_metrics

    logged = {k for k in run.data.metrics if not k.startswith(("fold", "gate/", "gates/"))} - set(external)
    listed = run_metrics(cfg).logged
    assert not logged - listed, f"add these to dualhrq/evaluation/run_metrics.py: {sorted(logged - listed)}"
    assert listed - logged <= {"oos/min_trl_days"}, f"listed but never logged: {sorted(listed - logged)}"
