"""MLflow's fluent API pointed at a store for one block leaves the process's settings as they were."""

import os

import mlflow
from mlflow.tracking._model_registry import utils as registry_utils
from mlflow.tracking._tracking_service import utils as tracking_utils

from dualhrq.tracking.store import fluent_store


def test_the_fluent_store_is_undone_after_the_block(tmp_path, monkeypatch):
    # a process where nothing set a store (Lightning's MLflow logger sets one for the rest of a training process)
    monkeypatch.setattr(tracking_utils, "_tracking_uri", None)
    monkeypatch.setattr(registry_utils, "_registry_uri", None)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    uri = f"sqlite:///{tmp_path}/a.db"
    with fluent_store(uri) as client:
        assert mlflow.get_tracking_uri() == uri and mlflow.get_registry_uri() == uri
        assert client._registry_uri == uri
    assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri()) == before
    # an environment set afterwards is honoured again: nothing was left pinned
    other = f"sqlite:///{tmp_path}/b.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", other)
    assert mlflow.get_tracking_uri() == other


def test_the_environment_given_before_comes_back(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/env.db")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    with fluent_store(f"sqlite:///{tmp_path}/a.db"):
        pass
    assert os.environ["MLFLOW_TRACKING_URI"] == f"sqlite:///{tmp_path}/env.db"
    assert "MLFLOW_REGISTRY_URI" not in os.environ
