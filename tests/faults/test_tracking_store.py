"""A tracking store that cannot be used stops the job before any data is read, with exit status 2 and one line
naming logger.mlflow.tracking_uri: a server that is down or drops the connection (tried once, not retried for
minutes), a read-only SQLite file, a file that is not a database."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator

import pytest
from mlflow.tracking import MlflowClient

from .conftest import job_args, run_job


def assert_refused(res, *phrases: str) -> None:
    message = res.stderr + res.stdout
    assert res.returncode == 2, message[-3000:]
    assert "ConfigError: logger.mlflow.tracking_uri=" in message
    for phrase in phrases:
        assert phrase in message
    assert "Traceback" not in message and "samples" not in message  # stopped before the data were read


@pytest.fixture
def dropping_server() -> Iterator[tuple[str, list[int]]]:
    """An HTTP address whose server accepts each connection and closes it unanswered; counts the attempts."""
    server = socket.create_server(("127.0.0.1", 0))
    attempts: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            attempts.append(1)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", attempts
    server.close()


def test_a_server_that_drops_the_connection_is_tried_once(tmp_path, dropping_server):
    uri, attempts = dropping_server
    res = run_job(job_args(tmp_path, f"logger.mlflow.tracking_uri={uri}", run_dir=tmp_path / "out"), tmp_path)
    assert_refused(res, "the tracking store cannot be used", "Fix: start the server")
    assert len(attempts) == 1  # MLflow's default would retry 7 times with backoff, for minutes


def test_a_server_that_is_not_there(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # free once closed: nothing listens there
    res = run_job(job_args(tmp_path, f"logger.mlflow.tracking_uri=http://127.0.0.1:{port}",
                           run_dir=tmp_path / "out"), tmp_path)
    assert_refused(res, "the tracking store cannot be used")


def test_a_corrupt_sqlite_file(tmp_path):
    (tmp_path / "mlruns.db").write_bytes(b"this is not a database " * 200)
    res = run_job(job_args(tmp_path, run_dir=tmp_path / "out"), tmp_path)
    assert_refused(res, "the tracking store cannot be used", "DatabaseError")


@pytest.mark.skipif(shutil.which("chattr") is None, reason="needs chattr to make a file read-only for root too")
def test_a_read_only_sqlite_file(tmp_path):
    db = tmp_path / "mlruns.db"
    MlflowClient(f"sqlite:///{db}").search_experiments()  # a valid store
    if subprocess.run(["chattr", "+i", str(db)], capture_output=True).returncode != 0:
        pytest.skip("this file system does not support the immutable attribute")
    try:
        res = run_job(job_args(tmp_path, run_dir=tmp_path / "out"), tmp_path)
    finally:
        subprocess.run(["chattr", "-i", str(db)], check=True)
    assert_refused(res, "read-only", "Fix: make both writable")
