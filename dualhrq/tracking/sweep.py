"""The sweep a run belongs to: its sibling runs in MLflow, for the Deflated Sharpe Ratio and comparisons.

A Hydra multirun logs one MLflow run per job into one experiment; ``mlflow
run`` or a parent run may group them instead. The sweep of a run is the
finished runs under the same parent run (tag ``mlflow.parentRunId``) when it
has one, else the finished runs of its experiment.
"""

from __future__ import annotations

from mlflow.entities import Run, ViewType
from mlflow.tracking import MlflowClient

PARENT_TAG = "mlflow.parentRunId"


def finished_runs(client: MlflowClient, experiment_id: str, parent_run_id: str | None = None) -> list[Run]:
    """Finished runs of an experiment (under ``parent_run_id`` if given) that logged ``oos/sharpe``."""
    query = "attributes.status = 'FINISHED'"
    if parent_run_id:
        query += f" and tags.`{PARENT_TAG}` = '{parent_run_id}'"
    runs: list[Run] = []
    token = None
    while True:
        page = client.search_runs([experiment_id], filter_string=query, run_view_type=ViewType.ACTIVE_ONLY,
                                  max_results=1000, page_token=token, order_by=["attributes.start_time ASC"])
        runs += [r for r in page if "oos/sharpe" in r.data.metrics]
        token = page.token
        if not token:
            return runs


def sweep_siblings(client: MlflowClient, run_id: str) -> tuple[list[Run], str]:
    """The other finished runs of ``run_id``'s sweep, and a description of where they were found."""
    run = client.get_run(run_id)
    parent = run.data.tags.get(PARENT_TAG)
    runs = [r for r in finished_runs(client, run.info.experiment_id, parent) if r.info.run_id != run_id]
    where = f"parent run {parent}" if parent else f"experiment {run.info.experiment_id}"
    return runs, where
