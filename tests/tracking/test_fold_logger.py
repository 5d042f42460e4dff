"""A fold's logger leaves the job's MLflow run open when its fit ends; Lightning's own closes it."""

from __future__ import annotations

from lightning.pytorch.loggers import MLFlowLogger
from mlflow.tracking import MlflowClient

from dualhrq.tracking.mlflow_run import FoldMLFlowLogger


def _status_after_fit_end(tmp_path, logger_cls) -> str:
    uri = f"sqlite:///{tmp_path}/mlruns.db"
    client = MlflowClient(uri)
    exp = client.create_experiment("job", artifact_location=(tmp_path / "artifacts").as_uri())
    run_id = client.create_run(exp).info.run_id
    logger = logger_cls(tracking_uri=uri, experiment_name="job", run_id=run_id, prefix="fold0")
    logger.log_metrics({"train/loss": 1.0}, step=0)
    logger.finalize("success")
    return client.get_run(run_id).info.status


def test_fold_logger_keeps_the_run_open_for_the_next_fold(tmp_path):
    assert _status_after_fit_end(tmp_path / "a", FoldMLFlowLogger) == "RUNNING"
    assert _status_after_fit_end(tmp_path / "b", MLFlowLogger) == "FINISHED"  # what it guards against
