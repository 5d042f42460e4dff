"""Sweeps of the real job (``python -m dualhrq.train -m``) through each launcher, on the smallest job there is:
hrm_tiny without conditioning, one fold of three years of the bundled data, 4 optimiser steps."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

SEEDS = ("1", "2", "3", "4")
# the settings each launcher runs its 4 jobs with: all 4 at once
LAUNCHERS = {
    "parallel": ["hydra/launcher=parallel", "hydra.launcher.n_jobs=4"],
    "slurm_local": ["hydra/launcher=slurm_local"],
    "ray_cluster": ["hydra/launcher=ray_cluster", "hydra.launcher.ray.init.num_cpus=4"],
}


def job_args(tmp: Path, experiment: str, uri: str | None = None) -> list[str]:
    """The tiny job's overrides; its store is the SQLite file under ``tmp`` unless ``uri`` names another."""
    return [
        "model=hrm_tiny", "model/conditioning=none", "data.source.start=2016-01-01", "data.batch_size=64",
        "trainer.max_steps=4", "trainer.precision=32-true", "+trainer.enable_progress_bar=false",
        "~callbacks.progress_bar", "validation.folds=[0]", "validation.stats.bootstrap_reps=50",
        f"task_name={experiment}", f"logger.mlflow.tracking_uri={uri or f'sqlite:///{tmp}/mlruns.db'}",
        f"logger.mlflow.artifact_location={tmp}/mlartifacts",
    ]


def job_env() -> dict[str, str]:
    """The caller's environment less MLflow's settings; Ray sends no usage statistics (no network in tests)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    return env


def run_train(args: Sequence[str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dualhrq.train", *args], cwd=cwd, env=job_env(),
                          capture_output=True, text=True, timeout=timeout)


def runs_of(uri: str, experiment: str) -> list[Run]:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id])


@dataclass(frozen=True)
class Sweep:
    """A finished 4-job sweep: its store, experiment, multirun directory and runs."""

    uri: str
    experiment: str
    sweep_dir: Path
    runs: list[Run]


def run_sweep(tmp: Path, launcher: str, uri: str | None = None) -> Sweep:
    """The tiny job over ``seed=1,2,3,4`` through ``launcher`` (a key of LAUNCHERS), run from ``tmp``."""
    experiment, sweep_dir = f"sweep_{launcher}", tmp / "multirun"
    uri = uri or f"sqlite:///{tmp}/mlruns.db"
    res = run_train(["-m", *job_args(tmp, experiment, uri), *LAUNCHERS[launcher], f"seed={','.join(SEEDS)}",
                     f"hydra.sweep.dir={sweep_dir}"], cwd=tmp)
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    return Sweep(uri, experiment, sweep_dir, runs_of(uri, experiment))


@pytest.fixture(scope="session")
def sweep_through(tmp_path_factory) -> Callable[[str], Sweep]:
    """The 4-job sweep of a launcher on a SQLite store of its own, run once a session and shared by its
    readers (the launcher's test, the tracking server's comparison)."""
    done: dict[str, Sweep] = {}

    def get(launcher: str) -> Sweep:
        if launcher not in done:
            done[launcher] = run_sweep(tmp_path_factory.mktemp(launcher), launcher)
        return done[launcher]
    return get


@pytest.fixture
def tracking_server(tmp_path) -> Iterator[tuple[str, Path]]:
    """``mlflow server`` on localhost (a free port) with a SQLite backend and proxied artifacts: its URL and the
    directory its artifacts land in. Stopped at the end of the test."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    served = tmp_path / "served"
    mlflow = Path(sys.executable).with_name("mlflow")
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen([str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                             "--backend-store-uri", f"sqlite:///{tmp_path}/server.db", "--serve-artifacts",
                             "--artifacts-destination", str(served)], cwd=tmp_path, env=job_env(), stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "mlflow server did not answer /health in 120 s"
                time.sleep(0.5)
        yield url, served
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
