"""Wall time of the same 4-job sweep under Hydra's basic launcher (one job after another) and the joblib launcher
(hydra/launcher=parallel, 4 processes); prints one JSON line with the ratio.

    python benchmarks/sweep_launchers.py
    python benchmarks/sweep_launchers.py --steps 32 --folds [0,1]

The jobs are the tiny job (hrm_tiny without conditioning, three years of the bundled data, one fold by default,
``--steps`` optimiser steps), ``seed=1,2,3,4``, each sweep on a fresh SQLite store, run from the command line as
a user would, process start and imports included. On a machine with fewer cores than jobs the joblib workers
share the cores (loky gives each worker cores / jobs BLAS threads, at least one), while the basic launcher's jobs
use torch's default threads (one per core) unless ``--threads`` sets OMP_NUM_THREADS for both.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAUNCHERS = {"basic": ["hydra/launcher=basic"], "joblib": ["hydra/launcher=parallel", "hydra.launcher.n_jobs=4"]}


def sweep_seconds(launcher: str, steps: int, folds: str, threads: int | None) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        args = ["model=hrm_tiny", "model/conditioning=none", "data.source.start=2016-01-01", "data.batch_size=64",
                f"trainer.max_steps={steps}", "trainer.precision=32-true", "+trainer.enable_progress_bar=false",
                "~callbacks.progress_bar", f"validation.folds={folds}", "validation.stats.bootstrap_reps=50",
                "task_name=bench", f"logger.mlflow.tracking_uri=sqlite:///{tmp}/mlruns.db",
                f"logger.mlflow.artifact_location={tmp}/mlartifacts", f"hydra.sweep.dir={tmp}/multirun",
                "seed=1,2,3,4", *LAUNCHERS[launcher]]
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        if threads is not None:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
        start = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "dualhrq.train", "-m", *args], cwd=tmp, env=env,
                             capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if res.returncode != 0:
            raise SystemExit(f"{launcher} sweep failed:\n{(res.stdout + res.stderr)[-3000:]}")
        if len(list(Path(tmp, "multirun").glob("*/summary.txt"))) != 4:
            raise SystemExit(f"{launcher} sweep did not leave 4 job summaries")
        return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="optimiser steps per fold")
    parser.add_argument("--folds", default="[0]", help="validation.folds of each job")
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of every job (default: unset)")
    args = parser.parse_args()
    load = os.getloadavg()[0]  # other work on the machine, before the sweeps
    basic = sweep_seconds("basic", args.steps, args.folds, args.threads)
    joblib = sweep_seconds("joblib", args.steps, args.folds, args.threads)
    print(json.dumps({"benchmark": "sweep_launchers", "jobs": 4, "steps": args.steps, "folds": args.folds,
                      "threads": args.threads, "cpu_count": os.cpu_count(), "load_average_before": round(load, 2),
                      "basic_s": round(basic, 1), "joblib_s": round(joblib, 1),
                      "basic_over_joblib": round(basic / joblib, 2)}))


if __name__ == "__main__":
    main()
