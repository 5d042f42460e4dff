"""The fault suite drives the real job (``python -m dualhrq.train``) in subprocesses on a small setup: hrm_tiny,
two folds of three years of the bundled data, 32 optimiser steps per fold (8 batches of 4 deep-supervision
segments, four batches an epoch), a checkpoint every 8 steps (every second batch).

The faults need that shape, not a size: a checkpoint inside an epoch and one at its end, a second epoch, a
second fold, an end stage. Three years in batches of 64 samples keep the four batches an epoch that four
years in batches of 128 gave, at about half the samples to train on, predict and measure."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

EXPERIMENT = "faults"


def job_args(tmp: Path, *extra: str, run_dir: Path | None = None) -> list[str]:
    """Overrides of the fault suite's job; stores under ``tmp``, outputs in ``run_dir`` (default: Hydra's)."""
    return [
        "model=hrm_tiny", "data.source.start=2016-01-01", "data.batch_size=64", "trainer.max_steps=32",
        "trainer.precision=32-true", "trainer.log_every_n_steps=1", "+trainer.enable_progress_bar=false",
        "~callbacks.progress_bar", "callbacks.model_checkpoint.every_n_train_steps=8",
        "validation.folds=[0,1]", "validation.stats.bootstrap_reps=50", f"task_name={EXPERIMENT}",
        f"logger.mlflow.tracking_uri=sqlite:///{tmp}/mlruns.db", f"logger.mlflow.artifact_location={tmp}/mlartifacts",
        *([f"hydra.run.dir={run_dir}"] if run_dir is not None else []), *extra,
    ]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


def start_job(args: Sequence[str], cwd: Path, log: Path) -> subprocess.Popen:
    with open(log, "a") as out:
        return subprocess.Popen([sys.executable, "-m", "dualhrq.train", *args], cwd=cwd, env=_env(), stdout=out,
                                stderr=subprocess.STDOUT)


def run_job(args: Sequence[str], cwd: Path, module: str = "dualhrq.train") -> subprocess.CompletedProcess:
    """``python -m <module> <args>`` to its end."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=900)


def kill_when(proc: subprocess.Popen, marker: Path, timeout: float = 600) -> None:
    """SIGKILL ``proc`` as soon as ``marker`` exists; fails if the job ends first."""
    deadline = time.monotonic() + timeout
    while not marker.exists():
        assert proc.poll() is None, f"the job ended (rc {proc.returncode}) before {marker.name} appeared"
        assert time.monotonic() < deadline, f"{marker} did not appear"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def runs(tmp: Path) -> list:
    """The job's runs in the store under ``tmp``; none where the job made no store (reading a store that is
    not there would create it, tables and all)."""
    if not (tmp / "mlruns.db").exists():
        return []
    client = MlflowClient(f"sqlite:///{tmp}/mlruns.db")
    exp = client.get_experiment_by_name(EXPERIMENT)
    return [] if exp is None else client.search_runs([exp.experiment_id])


def results(run) -> dict[str, float]:
    """A run's final metrics less the wall-clock ones."""
    return {k: v for k, v in run.data.metrics.items() if not k.endswith("seconds")}


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> tuple[Path, dict[str, float]]:
    """One uninterrupted job: its output directory and final metrics, shared by the fault tests."""
    tmp = tmp_path_factory.mktemp("reference")
    res = run_job(job_args(tmp, run_dir=tmp / "out"), cwd=tmp)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = runs(tmp)
    assert run.info.status == "FINISHED"
    return tmp / "out", results(run)
