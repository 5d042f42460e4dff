"""Compose the real config tree into a temporary directory and run the job on a tiny setup."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, open_dict

from dualhrq.config import CONF_DIR
from dualhrq.train import train

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


# The pinned two-fold runs (``pinned_metrics.json``): trials fixed so that runs do not count each other in their
# DSR, retrieval given a time limit it cannot reach so that a loaded machine cannot make it fail open.
PINNED_SETTINGS = ["validation.folds=[0,1]", "task_name=pin", "validation.stats.n_trials=1",
                   "validation.stats.sr_variance=0"]
VARIANTS = {
    "regime": [],
    "regime_rag": ["model/conditioning=regime_rag", "model.conditioning.retrieval.timeout_ms=1.0e7"],
    "puzzle_id": ["model/conditioning=puzzle_id"],
}


@dataclass(frozen=True)
class TinyRun:
    """A finished tiny job: the directory of its store, its config (outputs in ``cfg.paths.output_dir``),
    objective and MLflow run."""

    tmp: Path
    cfg: DictConfig
    objective: float
    run: Run


def run_pinned(tmp: Path, variant: str, out: str = "out") -> TinyRun:
    """The pinned job of ``variant`` run to its end, its store under ``tmp`` and its outputs in ``tmp/<out>``."""
    cfg = compose_tiny(tmp, [*PINNED_SETTINGS, *VARIANTS[variant]], out=out)
    objective = train(cfg)
    (run,) = [r for r in runs_of(tmp, "pin") if r.data.tags["output_dir"] == str((tmp / out).resolve())]
    return TinyRun(tmp, cfg, objective, run)


@pytest.fixture(scope="session")
def pinned_run(tmp_path_factory) -> Callable[[str], TinyRun]:
    """The pinned job of a variant, run once a session and shared by the tests that read it (pins, saved
    pipelines, conditioning metrics, determinism); each variant has a store of its own. Readers keep the run
    they are handed: the determinism test adds a second run of the job to the store, replays add runs of
    their own experiment."""
    done: dict[str, TinyRun] = {}

    def get(variant: str) -> TinyRun:
        if variant not in done:
            done[variant] = run_pinned(tmp_path_factory.mktemp(f"pin_{variant}"), variant)
        return done[variant]
    return get


@pytest.fixture
def client_for():
    return lambda tmp: MlflowClient(f"sqlite:///{tmp}/mlruns.db")


def assert_catalogue_matches(run, cfg: DictConfig, external: Sequence[str] = ("ext/checked",)) -> None:
    """The run-level metrics ``run`` logged are those the catalogue lists for its combination
    (``dualhrq.evaluation.run_metrics``), less any metric without a finite value, which is not logged."""
    from dualhrq.evaluation.run_metrics import run_metrics

    logged = {k for k in run.data.metrics if not k.startswith(("fold", "refit-", "gate/", "gates/"))} - set(external)
    listed = run_metrics(cfg).logged
    assert not logged - listed, f"add these to dualhrq/evaluation/run_metrics.py: {sorted(logged - listed)}"
    assert listed - logged <= {"oos/min_trl_days"}, f"listed but never logged: {sorted(listed - logged)}"
