"""What a registered model version was made from, as tags read off its training run.

The code (git commit), the data (SHA-256 of the bars), the resolved config (the run's ``config.yaml``
artifact and its hash), the sweep it belongs to, the training run itself, which fitted pipeline was packaged
(the refit, or one CV fold's), and the run's CV evidence: PSR, DSR, SPA p-value, Sharpe and every gate.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

from mlflow.entities import Run

from dualhrq.tracking.sweep import PARENT_TAG, SWEEP_TAG

RUN_TAG = "lineage.run_id"
SOURCE_TAG = "lineage.model_source"
EVIDENCE = {"oos/psr": "psr", "oos/dsr": "dsr", "oos/spa_pvalue": "spa_pvalue", "oos/sharpe": "sharpe",
            "oos/max_drawdown": "max_drawdown"}


def lineage_tags(run: Run, config: Path, source: str) -> dict[str, str]:
    """The version's lineage tags (``lineage.*``, ``cv.*``, ``gate.*``) from its training ``run``, whose
    ``config.yaml`` was downloaded to ``config``; ``source`` names the packaged pipeline artifact."""
    tags, metrics = run.data.tags, run.data.metrics
    out = {
        RUN_TAG: run.info.run_id,
        "lineage.experiment_id": run.info.experiment_id,
        SOURCE_TAG: source,
        "lineage.git_commit": tags.get("git.commit", "unknown"),
        "lineage.data_sha256": tags.get("data.sha256", "unknown"),
        "lineage.data_name": tags.get("data.name", "unknown"),
        "lineage.config": f"runs:/{run.info.run_id}/config.yaml",
        "lineage.config_sha256": hashlib.sha256(config.read_bytes()).hexdigest(),
        "lineage.sweep": tags.get(SWEEP_TAG) or tags.get(PARENT_TAG) or "none",
    }
    for metric, name in EVIDENCE.items():
        value = metrics.get(metric)
        out[f"cv.{name}"] = "not logged" if value is None or not math.isfinite(value) else f"{value:.6g}"
    out |= {k: v for k, v in tags.items() if k.startswith("gate.")}
    return out
