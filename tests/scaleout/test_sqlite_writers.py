"""Jobs sharing one SQLite store: a write that finds the database locked by another job is repeated with backoff
instead of failing the job; parallel jobs creating the same experiment all get it."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from mlflow.tracking import MlflowClient

from dualhrq.tracking import store
from dualhrq.tracking.mlflow_run import FoldMLFlowLogger, RunTracker
from dualhrq.tracking.store import RetryingClient, is_locked, retry_locked


def locked_for(db, seconds: float) -> threading.Thread:
    """Another writer: holds an exclusive lock on ``db`` for ``seconds``, from a thread of its own."""
    taken = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        taken.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
        conn.close()

    thread = threading.Thread(target=hold)
    thread.start()
    taken.wait()
    return thread


def test_only_a_locked_database_is_tried_again(monkeypatch):
    monkeypatch.setattr(store, "RETRY_WAITS_S", (0.0, 0.0))
    calls = []

    def flaky(fails: int, err: Exception):
        calls.append(1)
        if len(calls) <= fails:
            raise err
        return "done"

    locked = RuntimeError("(raised as a result of Query-invoked autoflush)")
    locked.__cause__ = sqlite3.OperationalError("database is locked")
    assert is_locked(locked) and not is_locked(ValueError("no such run"))
    assert retry_locked(flaky, 2, locked) == "done" and len(calls) == 3  # two waits, then the last try
    calls.clear()
    with pytest.raises(RuntimeError):
        retry_locked(flaky, 3, locked)  # still locked after every wait: the error is the store's own
    assert len(calls) == 3
    calls.clear()
    with pytest.raises(ValueError):
        retry_locked(flaky, 1, ValueError("no such run"))
    assert len(calls) == 1


@pytest.mark.slow
def test_a_job_writes_through_another_jobs_lock(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlruns.db"
    cfg = {"tracking_uri": uri, "experiment_name": "e", "artifact_location": str(tmp_path / "art")}
    tracker = RunTracker.open(cfg, tmp_path / "job")
    logger = FoldMLFlowLogger(tracking_uri=uri, experiment_name="e", run_id=tracker.run_id, prefix="fold0")
    plain = MlflowClient(uri)
    # MLflow waits 20 s for the lock (SQLite's busy timeout); the other writer holds it for 23 s
    holder = locked_for(tmp_path / "mlruns.db", 23.0)
    outcome: dict[str, BaseException | None] = {}

    def attempt(name, call):
        try:
            call()
            outcome[name] = None
        except Exception as err:  # noqa: BLE001 - recorded for the assertions
            outcome[name] = err

    writers = [threading.Thread(target=attempt, args=a) for a in (
        ("plain client", lambda: plain.log_metric(tracker.run_id, "plain", 1.0)),
        ("job's run", lambda: tracker.log_metrics({"oos/sharpe": 0.5})),
        ("job's logger", lambda: logger.log_metrics({"train/loss": 0.25}, step=3)))]
    for w in writers:
        w.start()
    for w in [*writers, holder]:
        w.join()
    assert is_locked(outcome["plain client"])  # without repeats the write is lost
    assert outcome["job's run"] is None and outcome["job's logger"] is None
    metrics = MlflowClient(uri).get_run(tracker.run_id).data.metrics
    assert metrics == {"oos/sharpe": 0.5, "fold0-train/loss": 0.25}


def test_jobs_creating_the_same_experiment_all_get_it(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path}/mlruns.db"
    cfg = {"tracking_uri": uri, "experiment_name": "e", "artifact_location": str(tmp_path / "art")}
    first = RunTracker.open(cfg, tmp_path / "a")
    real, missed = MlflowClient.get_experiment_by_name, []

    def late(self, name):  # the second job looked for the experiment just before the first one created it
        if not missed:
            missed.append(name)
            return None
        return real(self, name)

    monkeypatch.setattr(MlflowClient, "get_experiment_by_name", late)
    second = RunTracker.open(cfg, tmp_path / "b")
    assert missed == ["e"]
    runs = [MlflowClient(uri).get_run(t.run_id) for t in (first, second)]
    assert runs[0].info.experiment_id == runs[1].info.experiment_id
    assert isinstance(second.client, RetryingClient)
