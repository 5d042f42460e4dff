"""One MLflow run per training job, shared by every CV fold.

``RunTracker.open`` decides which run a job writes to: the one ``mlflow run`` opened
(``MLFLOW_RUN_ID``), the one this output directory used before (a resumed
job), or a new one in the configured experiment, created with an explicit
artifact location (a tracking server's experiments keep theirs on the server)
if another job of the sweep has not created it first. A resumed run that is still RUNNING was left by a job that
was killed: it is marked KILLED, then RUNNING again for the job that resumes
it. Folds log through :class:`FoldMLFlowLogger`, Lightning's logger minus the
habit of closing the run when one ``fit`` ends.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities import rank_zero_only
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from dualhrq.tracking.store import RetryingClient

log = logging.getLogger("dualhrq.train")
RUN_ID_FILE = "mlflow_run_id"
_BATCH = 100  # MLflow's log_batch accepts at most 100 params per call


class FoldMLFlowLogger(MLFlowLogger):
    """Lightning's MLflow logger that leaves the run open after ``fit``: the job closes it. Its calls are
    repeated while a SQLite store is locked by another job's write."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._mlflow_client = RetryingClient(self._mlflow_client)

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        return None


class RunTracker:
    """Thin handle on one MLflow run: params, metrics, tags and artifacts."""

    def __init__(self, client: MlflowClient | RetryingClient, run_id: str, tracking_uri: str) -> None:
        self.client = client
        self.run_id = run_id
        self.tracking_uri = tracking_uri

    @classmethod
    def open(cls, logger_cfg: Mapping[str, Any], output_dir: Path, run_name: str | None = None) -> RunTracker:
        """Reuse ``MLFLOW_RUN_ID`` or this output dir's run, else start a new run."""
        uri = str(logger_cfg["tracking_uri"])
        client = RetryingClient(MlflowClient(tracking_uri=uri))
        marker = output_dir / RUN_ID_FILE
        run_id = os.environ.get("MLFLOW_RUN_ID")
        if run_id is None and marker.exists():
            run_id = marker.read_text().strip()
            _reopen(client, run_id)
        if run_id is None:
            experiment_id = _experiment_id(client, logger_cfg["experiment_name"], _artifact_uri(logger_cfg, uri))
            run_id = client.create_run(experiment_id, run_name=run_name).info.run_id
        output_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text(run_id)
        return cls(client, run_id, uri)

    def log_params(self, params: Mapping[str, Any]) -> None:
        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), _BATCH):
            self.client.log_batch(self.run_id, params=items[i : i + _BATCH])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)[:5000]) for k, v in tags.items()])

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def metrics(self) -> dict[str, float]:
        """The latest value of every metric logged to the run so far, by any part of the job."""
        return dict(self.client.get_run(self.run_id).data.metrics)

    def finish(self, status: str = "FINISHED") -> None:
        # a run opened by `mlflow run` is closed by the CLI that opened it
        if "MLFLOW_RUN_ID" not in os.environ:
            self.client.set_terminated(self.run_id, status)


def _reopen(client: MlflowClient | RetryingClient, run_id: str) -> None:
    """Mark a run left RUNNING by a killed job KILLED, then set the run RUNNING for the job resuming it."""
    status = client.get_run(run_id).info.status
    if status == "RUNNING":
        client.set_terminated(run_id, "KILLED")
        log.warning("MLflow run %s was left RUNNING by a job that was killed; marked KILLED, resuming it", run_id)
        status = "KILLED"
    client.set_tag(run_id, "resumed_after", status)
    client.update_run(run_id, status="RUNNING")


def _experiment_id(client: MlflowClient | RetryingClient, name: str, artifact_location: str | None) -> str:
    """The experiment ``name``, created if missing. Jobs of a parallel sweep start together: when another job
    creates it first, creating it fails as already existing, and that job's experiment is the one."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except MlflowException as err:
        if err.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def _artifact_uri(logger_cfg: Mapping[str, Any], tracking_uri: str) -> str | None:
    """Where a new experiment keeps its artifacts. A plain path is for a store on this machine: with a tracking
    server the server's own root (its proxied ``mlflow-artifacts:`` store) is used, which every job of a
    cluster can reach; a URI (``s3://...``) is used as given."""
    location = logger_cfg.get("artifact_location")
    if not location:
        return None
    if "://" in str(location):
        return str(location)
    if _is_server(tracking_uri):
        return None
    return Path(location).resolve().as_uri()


def _is_server(tracking_uri: str) -> bool:
    """A tracking server (``http(s)://``) rather than a store the job opens itself."""
    return tracking_uri.startswith(("http://", "https://"))


def flatten_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as ``{"model.net.h.dim": 384, ...}`` for MLflow params."""
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        else:
            flat[prefix[:-1]] = node

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return flat


def override_tags(overrides: Iterable[str]) -> dict[str, str]:
    """Tags that let the MLflow UI group and filter runs of a sweep by their overrides."""
    overrides = list(overrides)
    tags = {"hydra.overrides": " ".join(overrides) or "(none)"}
    for item in overrides:
        key, _, value = item.lstrip("+~").partition("=")
        tags[f"override.{key}"] = value
    return tags
