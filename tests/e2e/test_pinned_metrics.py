"""Tiny end-to-end runs give the metrics recorded in ``pinned_metrics.json``.

The file was written by the job as it stood before its stages were moved into their own
packages; a refactor that changes a number (a fold's loss, a p-value, a gate) fails here.
Retrieval gets a time limit it cannot reach, so a loaded machine cannot make it fail open.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from dualhrq.train import train

from .conftest import compose_tiny, runs_of

PINNED = json.loads((Path(__file__).parent / "pinned_metrics.json").read_text())
VARIANTS = {
    "regime": [],
    "regime_rag": ["model/conditioning=regime_rag", "model.conditioning.retrieval.timeout_ms=1.0e7"],
    "puzzle_id": ["model/conditioning=puzzle_id"],
}


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_tiny_run_reproduces_its_pinned_metrics(tmp_path, variant):
    train(compose_tiny(tmp_path, ["validation.folds=[0,1]", "task_name=pin", "validation.stats.n_trials=1",
                                  "validation.stats.sr_variance=0", *VARIANTS[variant]]))
    (run,) = runs_of(tmp_path, "pin")
    expected = PINNED[variant]
    metrics = {k: v for k, v in run.data.metrics.items() if k in expected["metrics"]}
    assert set(expected["metrics"]) == set(metrics), "pinned metrics are missing from the run"
    for key, value in expected["metrics"].items():
        assert metrics[key] == pytest.approx(value, rel=1e-5, abs=1e-9, nan_ok=True), key
    signal = pl.read_parquet(tmp_path / "out" / "oos_predictions.parquet")["signal"]
    assert float(signal.sum()) == pytest.approx(expected["signal_sum"], rel=1e-5)
    assert float(signal.abs().sum()) == pytest.approx(expected["signal_abs_sum"], rel=1e-5)
