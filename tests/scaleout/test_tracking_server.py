"""A shared tracking server (`mlflow server`, SQLite behind it, artifacts proxied): 4 jobs of a parallel sweep log
through it everything the same jobs log to a SQLite file, and their artifacts land in the server's store."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from .conftest import SEEDS, run_sweep

# artifacts every run of the tiny job holds (the comparison with the SQLite runs checks the full list)
KNOWN = {"config.yaml", "oos_predictions.parquet", "cpcv_returns.parquet", "summary.txt", "report/report.html"}


def artifact_tree(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    found: set[str] = set()
    for item in client.list_artifacts(run_id, path):
        found |= artifact_tree(client, run_id, item.path) if item.is_dir else {item.path}
    return found


@pytest.mark.slow
def test_a_parallel_sweep_logs_every_run_whole_through_the_server(tmp_path, tracking_server, sweep_through):
    url, served = tracking_server
    sweep = run_sweep(tmp_path, "parallel", uri=url)
    on_file = sweep_through("parallel")  # the same 4 jobs, logged to a SQLite file
    twins = {r.data.tags["override.seed"]: r for r in on_file.runs}
    server, local = MlflowClient(url), MlflowClient(on_file.uri)
    assert len(sweep.runs) == 4 and {r.info.status for r in sweep.runs} == {"FINISHED"}
    assert sorted(twins) == sorted(r.data.tags["override.seed"] for r in sweep.runs) == list(SEEDS)
    for run in sweep.runs:
        twin = twins[run.data.tags["override.seed"]]
        assert set(run.data.metrics) == set(twin.data.metrics)
        assert set(run.data.params) == set(twin.data.params)
        # every logged value of every metric (per-step training curves included) reached the server
        for key in run.data.metrics:
            assert len(server.get_metric_history(run.info.run_id, key)) == len(
                local.get_metric_history(twin.info.run_id, key)), key
        files = artifact_tree(server, run.info.run_id)
        assert files == artifact_tree(local, twin.info.run_id)
        assert KNOWN <= files and any(f.startswith("checkpoints/") for f in files)
        # stored by the server (the job's local artifact_location is for local stores only) and read back whole
        assert run.info.artifact_uri.startswith("mlflow-artifacts:")
        config = Path(server.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path / run.info.run_id)))
        assert config.read_text() == (Path(run.data.tags["output_dir"]) / "config.yaml").read_text()
    assert len(list(served.rglob("summary.txt"))) == 4
    assert not (tmp_path / "mlartifacts").exists()
