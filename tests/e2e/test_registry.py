"""From run to served model, end to end: train, register with lineage, promote a better challenger, refuse a worse
one, roll back, serve the champion with MLflow's own server and get the in-process decision over HTTP.

The market is the planted one (``data=synthetic_planted``), where the truth is known: a model trained on it
finds the planted edge (its Sharpe bound is 11.2), and a model trained on block-shuffled labels
(``validation.control=shuffle``) has nothing to find. So "better" and "worse" are set by construction, not by
looking at the figures.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
from mlflow.tracking import MlflowClient

from dualhrq.registry.__main__ import main as registry_main
from dualhrq.tracking.store import fluent_store
from dualhrq.train import train

from .conftest import compose_tiny, run_cli, runs_of

MODEL = "planted"
PLANTED = ["data=synthetic_planted", "data.batch_size=64", f"task_name={MODEL}", "validation.folds=[0]",
           "validation.stats.n_trials=1", "validation.stats.sr_variance=0", "validation.stats.bootstrap_reps=100"]
SHUFFLED = ["validation.control=shuffle", "trainer.max_steps=10"]


def _store(tmp: Path) -> list[str]:
    return [f"logger.mlflow.tracking_uri=sqlite:///{tmp}/mlruns.db", f"name={MODEL}"]


def _registry(capsys, tmp: Path, *args: str) -> tuple[int, str]:
    """``python -m dualhrq.registry <args>`` in this process: its exit status and what it printed."""
    capsys.readouterr()
    status = registry_main([*args, *_store(tmp)])
    out = capsys.readouterr()
    return status, out.out + out.err


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


class Server:
    """``mlflow models serve --env-manager local`` on a free localhost port, stopped on exit."""

    def __init__(self, tmp: Path, model: str) -> None:
        self.port = _free_port()
        bin_dir = str(Path(sys.executable).parent)  # the server execs uvicorn from PATH
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
               "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlruns.db", "PATH": f"{bin_dir}:{os.environ['PATH']}"}
        self.log = open(tmp / f"serve-{self.port}.log", "w")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", model,
                                      "--env-manager", "local", "--host", "127.0.0.1", "-p", str(self.port)],
                                     cwd=tmp, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, Path(self.log.name).read_text()[-3000:]
            try:
                if requests.get(f"{self.url}/ping", timeout=2).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        raise AssertionError("the server did not come up: " + Path(self.log.name).read_text()[-3000:])

    def post(self, frame: pd.DataFrame) -> requests.Response:
        body = json.dumps({"dataframe_split": frame.to_dict(orient="split")})
        return requests.post(f"{self.url}/invocations", data=body, headers={"Content-Type": "application/json"},
                             timeout=60)

    def __exit__(self, *exc) -> None:
        os.killpg(self.proc.pid, 15)
        self.proc.wait(timeout=30)
        self.log.close()


def _version_by_alias(client: MlflowClient, alias: str) -> str:
    return str(client.get_model_version_by_alias(MODEL, alias).version)


@pytest.mark.slow
def test_run_to_served_model(tmp_path, capsys):
    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns.db")
    # v1: nothing learnable (shuffled labels), with retrieval, refitted and registered by the training job itself
    train(compose_tiny(tmp_path, [*PLANTED, *SHUFFLED, "model/conditioning=regime_rag",
                                  "model.conditioning.retrieval.timeout_ms=1.0e7", "validation.refit=true",
                                  "registry.register=true"], out="champion"))
    (first,) = runs_of(tmp_path, MODEL)
    assert first.data.metrics["refit/steps"] == 10
    assert _version_by_alias(client, "champion") == "1"
    v1 = client.get_model_version(MODEL, "1")
    assert v1.tags["lineage.run_id"] == first.info.run_id
    assert client.get_run(v1.tags["lineage.run_id"]).info.status == "FINISHED"  # lineage points at a real run
    assert v1.tags["lineage.model_source"] == "checkpoints/refit"
    assert v1.tags["lineage.data_sha256"] == first.data.tags["data.sha256"]
    assert v1.tags["lineage.git_commit"] == first.data.tags["git.commit"]
    assert v1.tags["cv.spa_pvalue"] != "not logged" and "gate.spa" in v1.tags
    config = client.download_artifacts(first.info.run_id, "config.yaml", str(tmp_path / "cfg"))
    assert client.get_run(v1.tags["lineage.config"].split("/")[1]).info.run_id == first.info.run_id
    assert Path(config).is_file()

    # v2: the planted edge learnt (the positive control's settings), registered with the CLI as the challenger
    train(compose_tiny(tmp_path, [*PLANTED, "trainer.max_steps=80"], out="better"))
    better = next(r for r in runs_of(tmp_path, MODEL) if r.info.run_id != first.info.run_id)
    done = run_cli(["dualhrq.registry", "register", f"run_id={better.info.run_id}", "registry.source=fold0",
                    *_store(tmp_path)], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert _version_by_alias(client, "challenger") == "2"
    status, out = _registry(capsys, tmp_path, "promote", "challenger=2")
    assert status == 0, out
    assert "PROMOTE" in out and "SPA p" in out
    assert _version_by_alias(client, "champion") == "2"
    v2 = client.get_model_version(MODEL, "2")
    assert v2.tags["promotion.decision"] == "promoted" and v2.tags["promotion.against"] == "1"
    assert float(v2.tags["promotion.spa_pvalue"]) < 0.05
    assert "SPA p" in v2.description

    # v3: shuffled again (another seed): refused with the table, the champion stays
    train(compose_tiny(tmp_path, [*PLANTED, *SHUFFLED, "seed=7"], out="worse"))
    worse = next(r for r in runs_of(tmp_path, MODEL) if r.info.run_id not in (first.info.run_id, better.info.run_id))
    assert _registry(capsys, tmp_path, "register", f"run_id={worse.info.run_id}", "registry.source=fold0")[0] == 0
    status, out = _registry(capsys, tmp_path, "promote", "challenger=3")
    assert status == 1, out
    assert "REFUSE" in out and "SPA p" in out
    assert _version_by_alias(client, "champion") == "2"
    assert client.get_model_version(MODEL, "3").tags["promotion.decision"] == "refused"

    # rollback: v1 is the champion again, and both versions record it
    status, out = _registry(capsys, tmp_path, "rollback")
    assert status == 0, out
    assert _version_by_alias(client, "champion") == "1"
    assert client.get_model_version(MODEL, "2").tags["rollback.to"] == "1"
    status, out = _registry(capsys, tmp_path, "rollback")
    assert status == 2 and "no earlier champion" in out  # nothing earlier to go back to
    status, out = _registry(capsys, tmp_path, "show")
    assert status == 0 and "champion" in out

    # serve the champion with MLflow's server; the decision over HTTP is the in-process one
    with fluent_store(f"sqlite:///{tmp_path}/mlruns.db"):
        local = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
        model_dir = Path(mlflow.artifacts.download_artifacts(f"models:/{MODEL}@champion",
                                                             dst_path=str(tmp_path / "m")))
    bars = local.input_example
    expected = local.predict(bars)
    assert list(expected["symbol"]) == ["PLANTED0", "PLANTED1"] and not expected["failed_open"].any()
    with Server(tmp_path, f"models:/{MODEL}@champion") as server:
        answer = server.post(bars)
        assert answer.status_code == 200, answer.text
        got = pd.DataFrame(answer.json()["predictions"])
        np.testing.assert_allclose(got["signal"], expected["signal"], rtol=0, atol=1e-6)
        assert list(got["segments"]) == list(expected["segments"]) and list(got["ts"]) == list(expected["ts"])
        assert not got["failed_open"].any()
        # malformed requests: 4xx naming the field, and the server keeps answering
        nan = bars.copy()
        nan.loc[5, "close"] = np.nan
        cases = [("close", bars.drop(columns=["close"])), ("close", nan), ("volume", bars.assign(volume="many")),
                 ("ts", bars.groupby("symbol").tail(20)), ("symbol", bars.replace({"symbol": {"PLANTED1": "DOW"}}))]
        for field, frame in cases:
            bad = server.post(frame)
            assert 400 <= bad.status_code < 500, (field, bad.status_code)
            assert field in bad.json()["message"], (field, bad.text[-500:])
        assert server.post(bars).status_code == 200

    # the same model with its pattern index gone: it still answers, on regime-only conditioning, and says so
    library = next(model_dir.rglob("patterns"))
    for f in library.iterdir():
        f.unlink()
    with Server(tmp_path, str(model_dir)) as server:
        answer = server.post(bars)
        assert answer.status_code == 200, answer.text
        assert pd.DataFrame(answer.json()["predictions"])["failed_open"].all()


@pytest.mark.parametrize(("args", "phrase"), [
    ([], "usage: python -m dualhrq.registry"),
    (["deploy"], "usage: python -m dualhrq.registry"),
    (["register"], "ConfigError: run_id: register needs run_id="),
    (["promote"], "ConfigError: challenger: promote needs challenger="),
    (["register", "run_id=abc"], "DataError: run_id=abc: no such run"),
    (["promote", "challenger=2"], f"DataError: model '{MODEL}' has no champion"),
    (["promote", "challenger=2", "level=1.5"], "ConfigError: level must be in (0, 1), got 1.5"),
    (["rollback"], f"DataError: model '{MODEL}' has no earlier champion"),
    (["show"], f"DataError: name={MODEL}: no registered model of that name"),
    (["show", "bogus=1"], "ConfigError: Could not override 'bogus'"),
])
def test_the_registry_cli_refuses_bad_input_in_one_line(tmp_path, capsys, monkeypatch, args, phrase):
    monkeypatch.chdir(tmp_path)
    store = _store(tmp_path) if args else []
    capsys.readouterr()
    assert registry_main([*args, *store]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(phrase), err
    if args in (["register"], ["promote"]):
        assert not (tmp_path / "mlruns.db").exists()  # refused before any store is touched
