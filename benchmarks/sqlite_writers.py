"""Parallel jobs writing to one MLflow store: are runs or metrics lost, do errors surface? Prints one JSON line.

    python benchmarks/sqlite_writers.py --writers 4 8 --steps 200
    python benchmarks/sqlite_writers.py --writers 4 8 --steps 200 --server   # the same through `mlflow server`

Each writer is a process that does what a training job does to its store, through the same code: check the store
(``check_tracking_store``: a fresh SQLite schema is made under a file lock), open the run (``RunTracker.open``,
creating the experiment if it is missing), log the flattened config as params and the
lineage tags, log ``--steps`` training steps of 4 metrics each through the job's Lightning logger
(``FoldMLFlowLogger``), log two artifacts and the run-level metrics, and close the run. All writers start
together on a fresh store. Counted afterwards from the store: runs, FINISHED runs, metric values (each step's
history), artifacts, and the errors each writer raised (``database is locked`` among them). The job's
training between steps is left out, so the store sees far more writes per second than real jobs make: a
stress bound, not a job's load.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from pathlib import Path

STEP_METRICS = ("train/loss", "train/utility", "train/forecast_nll", "lr-AdamW")
EXPERIMENT = "writers"


def writer(uri: str, root: str, steps: int, start: mp.Barrier, errors: mp.Queue) -> None:
    """One job's writes to the store at ``uri``; any exception is put on ``errors`` as ``(type, first line)``."""
    from dualhrq.tracking.mlflow_run import FoldMLFlowLogger, RunTracker
    from dualhrq.tracking.store import check_tracking_store

    out = Path(root) / f"job{mp.current_process().name}"
    out.mkdir(parents=True)
    cfg = {"tracking_uri": uri, "experiment_name": EXPERIMENT, "artifact_location": f"{root}/mlartifacts"}
    start.wait()
    try:
        check_tracking_store(uri)
        tracker = RunTracker.open(cfg, out)
        tracker.log_params({f"model.param_{i}": i for i in range(250)})
        tracker.set_tags({"git.commit": "0" * 40, "data.sha256": "f" * 64, "hydra.overrides": "seed=1"})
        logger = FoldMLFlowLogger(tracking_uri=uri, experiment_name=EXPERIMENT, run_id=tracker.run_id,
                                  prefix="fold0")
        for step in range(steps):
            logger.log_metrics({m: step / (1 + k) for k, m in enumerate(STEP_METRICS)}, step=step)
        (out / "summary.txt").write_text("summary\n")
        (out / "config.yaml").write_text("seed: 1\n")
        tracker.log_artifact(out / "summary.txt")
        tracker.log_artifact(out / "config.yaml")
        tracker.log_metrics({"oos/sharpe": 0.5, "oos/psr": 0.9})
        tracker.finish()
    except Exception as err:  # noqa: BLE001 - counted, whatever it is
        lines = str(err).strip().splitlines() or [type(err).__name__]
        errors.put((type(err).__name__, lines[0][:200], traceback.format_exc()[-600:]))


def count(uri: str, steps: int) -> dict[str, int]:
    """What the store holds after the writers: runs, finished runs, step metric values, artifacts."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    runs = [] if exp is None else client.search_runs([exp.experiment_id])
    values = sum(len(client.get_metric_history(r.info.run_id, f"fold0-{m}")) for r in runs for m in STEP_METRICS)
    artifacts = sum(len(client.list_artifacts(r.info.run_id)) for r in runs)
    return {"runs": len(runs), "finished": sum(r.info.status == "FINISHED" for r in runs),
            "step_values": values, "artifacts": artifacts}


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


def start_server(root: Path) -> tuple[subprocess.Popen, str]:
    """``mlflow server`` on a SQLite file with proxied artifacts, on a free localhost port."""
    port = free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    proc = subprocess.Popen([str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port),
                             "--backend-store-uri", f"sqlite:///{root}/server.db", "--serve-artifacts",
                             "--artifacts-destination", str(root / "served"), "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("mlflow server did not answer /health in 120 s")


def measure(n: int, steps: int, server: bool) -> dict:
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        proc, uri = start_server(root) if server else (None, f"sqlite:///{root}/mlruns.db")
        try:
            start, errors = ctx.Barrier(n), ctx.Queue()
            procs = [ctx.Process(target=writer, args=(uri, tmp, steps, start, errors), name=str(i)) for i in range(n)]
            began = time.perf_counter()
            for p in procs:
                p.start()
            for p in procs:
                p.join()
            seconds = time.perf_counter() - began
            found = []
            while not errors.empty():
                found.append(errors.get())
            held = count(uri, steps)
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait()
    locked = sum("database is locked" in e[1] or "database is locked" in e[2] for e in found)
    return {"writers": n, **held, "expected_step_values": n * steps * len(STEP_METRICS),
            "expected_artifacts": 2 * n, "errors": len(found), "locked_errors": locked,
            "error_kinds": sorted({f"{e[0]}: {e[1]}" for e in found}), "seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--steps", type=int, default=200, help="training steps each writer logs")
    parser.add_argument("--server", action="store_true", help="write through `mlflow server` (SQLite behind it)")
    args = parser.parse_args()
    results = [measure(n, args.steps, args.server) for n in args.writers]
    print(json.dumps({"benchmark": "sqlite_writers", "store": "mlflow server" if args.server else "sqlite file",
                      "steps": args.steps, "results": results}))


if __name__ == "__main__":
    main()
