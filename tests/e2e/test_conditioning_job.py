"""The training job with regime + pattern conditioning: the run-level metrics the statistics gates read,
per-fold variants, and the pattern library saved with the run."""

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from dualhrq.patterns.library import PatternLibrary

from .conftest import assert_catalogue_matches


@pytest.mark.slow
def test_regime_rag_job_logs_gate_metrics_and_the_pattern_library(pinned_run):
    # the session's two-fold regime_rag job; its retrieval time limit, too long to be reached, changes no
    # metric read here: the calls still split into ok, timeouts, errors and skipped
    shared = pinned_run("regime_rag")
    cfg, run = shared.cfg, shared.run
    m = run.data.metrics
    for name in ("regime/switches_per_day", "inputs/mi_symbol_bits", "conditioning/mi_symbol_bits",
                 "conditioning/mi_weekday_bits", "retrieval/fail_open_rate", "retrieval/latency_p99_ms",
                 "patterns/size"):
        assert name in m and f"fold0-{name}" in m and f"fold1-{name}" in m
        assert m[name] == pytest.approx((m[f"fold0-{name}"] + m[f"fold1-{name}"]) / 2)
    assert 0.0 <= m["regime/switches_per_day"] <= 1.0 and m["conditioning/mi_symbol_bits"] >= 0.0
    assert m["retrieval/calls"] == m["retrieval/ok"] + m["retrieval/timeouts"] + m["retrieval/errors"] + \
        m["retrieval/skipped"]
    assert "fold0-train/regime_ce" in m
    assert_catalogue_matches(run, cfg)
    # the saved library loads back and holds fold 0's training patterns
    lib = PatternLibrary.load(Path(cfg.paths.output_dir) / "folds" / "fold0" / "patterns" / "fold0")
    assert len(lib) == m["fold0-patterns/size"] > 0
    artifacts = {a.path for a in MlflowClient(f"sqlite:///{shared.tmp}/mlruns.db")
                 .list_artifacts(run.info.run_id, "patterns/fold0")}
    assert {"patterns/fold0/index.faiss", "patterns/fold0/patterns.npz", "patterns/fold0/library.json"} <= artifacts
