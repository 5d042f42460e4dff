"""Make sure the tracking store can be used before a job reads data or opens a run, and keep using it while
other jobs write to the same SQLite file.

A server that is down, a SQLite file that is read-only or not a database, fail here within seconds with one
line naming ``logger.mlflow.tracking_uri``, instead of after minutes of retries or with a database traceback.
A fresh SQLite store gets its schema here, under a file lock, so jobs started together do not race on
creating it.

SQLite lets one writer in at a time. MLflow has it wait up to 20 s for the lock, but of two transactions that both
read before writing SQLite fails one at once with ``database is locked`` (benchmarks/sqlite_writers.py saw it with
8 jobs logging at full speed). The job's MLflow calls go through :class:`RetryingClient`, which
repeats such a call with backoff; the transaction that failed was rolled back, so repeating it is safe.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock, Timeout
from mlflow.tracking import MlflowClient

from dualhrq.errors import ConfigError

log = logging.getLogger("dualhrq.train")
T = TypeVar("T")
FIELD = "logger.mlflow.tracking_uri"
LOCKED = "database is locked"
# waits before each repeat of a call that found the database locked: 25.5 s in all, on top of SQLite's own waits
RETRY_WAITS_S = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8)
# MLflow's own request settings for the probe: one try with a short timeout, no retries
PROBE_ENV = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "10", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
SCHEMA_LOCK_TIMEOUT_S = 120.0


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for any other store)."""
    prefix = "sqlite:///"
    return Path(uri[len(prefix):]) if uri.startswith(prefix) else None


def check_tracking_store(uri: str) -> None:
    """Reach the store at ``uri`` once (creating a fresh SQLite schema under a lock); ``ConfigError`` naming
    ``logger.mlflow.tracking_uri`` when it cannot be written to."""
    db = sqlite_path(uri)
    try:
        if db is None:
            with _probe_settings():
                MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
            return
        _check_writable(db)
        with FileLock(f"{db}.lock", timeout=SCHEMA_LOCK_TIMEOUT_S):
            retry_locked(MlflowClient(tracking_uri=uri).search_experiments, max_results=1)
    except ConfigError:
        raise
    except Timeout:
        raise ConfigError(f"{FIELD}={uri}: another job has held {db}.lock for {SCHEMA_LOCK_TIMEOUT_S:.0f} s. "
                          "Fix: delete the lock file if no job is running.") from None
    except Exception as err:  # noqa: BLE001 - any failure of the store is reported the same way
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"{FIELD}={uri}: the tracking store cannot be used ({type(err).__name__}: "
                          f"{reason[:300]}). Fix: start the server or point {FIELD} (or MLFLOW_TRACKING_URI) "
                          "at a store that works, e.g. sqlite:///mlruns.db.") from None


def _check_writable(db: Path) -> None:
    directory = db.parent
    if not directory.is_dir():
        raise ConfigError(f"{FIELD}=sqlite:///{db}: the directory {directory} does not exist. Fix: create it "
                          "or point the URI elsewhere.")
    if not os.access(directory, os.W_OK | os.X_OK) or (db.exists() and not os.access(db, os.W_OK)):
        raise ConfigError(f"{FIELD}=sqlite:///{db}: the database or its directory is read-only. Fix: make both "
                          "writable or point the URI at a writable place.")


@contextmanager
def _probe_settings() -> Iterator[None]:
    """MLflow's request timeout and retries for the probe, unless the user set them."""
    added = {k: v for k, v in PROBE_ENV.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def is_locked(err: BaseException) -> bool:
    """Whether ``err`` (or an error it was raised from) is SQLite's ``database is locked``."""
    seen: BaseException | None = err
    while seen is not None:
        if LOCKED in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def retry_locked(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call(*args, **kwargs)``, repeated after each of RETRY_WAITS_S while it fails with a locked database."""
    for wait in RETRY_WAITS_S:
        try:
            return call(*args, **kwargs)
        except Exception as err:
            if not is_locked(err):
                raise
            log.warning("MLflow store busy (%s) in %s; trying again in %.1f s", LOCKED,
                        getattr(call, "__name__", "call"), wait)
            time.sleep(wait)
    return call(*args, **kwargs)


class RetryingClient:
    """An ``MlflowClient`` whose calls are repeated with backoff while SQLite reports the database locked
    (:func:`retry_locked`); any other error, and every attribute, is the client's own."""

    def __init__(self, client: MlflowClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr
        return functools.wraps(attr)(functools.partial(retry_locked, attr))


_FLUENT_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@contextmanager
def fluent_store(uri: str) -> Iterator[MlflowClient]:
    """MLflow's fluent API (``start_run``, ``log_model``, ``register_model``, ``models:/`` URIs) on the store
    ``uri`` for the block only, and a client of its tracking and registry; the process's own settings and
    environment come back afterwards, so no later client, job or subprocess inherits this store. MLflow keeps
    the unset state in module globals, hence the reads of ``_tracking_uri`` and ``_registry_uri``."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved = tracking_utils._tracking_uri, registry_utils._registry_uri, {k: os.environ.get(k) for k in _FLUENT_ENV}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield MlflowClient(tracking_uri=uri, registry_uri=uri)
    finally:
        mlflow.set_tracking_uri(saved[0])
        registry_utils._registry_uri = saved[1]
        for key, value in saved[2].items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
