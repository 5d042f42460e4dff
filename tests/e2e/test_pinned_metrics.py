"""Tiny end-to-end runs give the metrics recorded in ``pinned_metrics.json``.

A refactor that changes a number (a fold's loss, a p-value, a gate) fails here. A change meant to
move the numbers rewrites the file on purpose, and says why in its commit:
``python -m tests.e2e.test_pinned_metrics``. Retrieval gets a time limit it cannot reach, so a
loaded machine cannot make it fail open. The runs are the session's shared ones (``pinned_run``).

The pins are kept per CPU instruction set (torch's ``get_cpu_capability``: AVX512, AVX2, ...): fp32
kernels for different vector widths sum in different orders, and a regime label that flips on a last-digit
difference moves a tiny run's figures by up to 1%. On one kind of CPU the run is exact to 1e-5; a CPU kind
without pins fails with the command that records them.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import torch

from .conftest import VARIANTS, TinyRun, run_pinned

PINS = Path(__file__).parent / "pinned_metrics.json"
CAPABILITY = torch.backends.cpu.get_cpu_capability()


def _signal(run: TinyRun) -> pl.Series:
    return pl.read_parquet(Path(run.cfg.paths.output_dir) / "oos_predictions.parquet")["signal"]


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_tiny_run_reproduces_its_pinned_metrics(pinned_run, variant):
    pinned = json.loads(PINS.read_text())
    if CAPABILITY not in pinned:
        pytest.fail(f"no pinned metrics for this CPU's capability {CAPABILITY} (pinned: {sorted(pinned)}). Record "
                    "them with python -m tests.e2e.test_pinned_metrics and commit the file.")
    run = pinned_run(variant)
    logged, signal = run.run.data.metrics, _signal(run)
    expected = pinned[CAPABILITY][variant]
    metrics = {k: v for k, v in logged.items() if k in expected["metrics"]}
    assert set(expected["metrics"]) == set(metrics), "pinned metrics are missing from the run"
    for key, value in expected["metrics"].items():
        assert metrics[key] == pytest.approx(value, rel=1e-5, abs=1e-9, nan_ok=True), key
    assert float(signal.sum()) == pytest.approx(expected["signal_sum"], rel=1e-5)
    assert float(signal.abs().sum()) == pytest.approx(expected["signal_abs_sum"], rel=1e-5)


if __name__ == "__main__":  # rewrite this CPU capability's pins from the job as it stands
    import tempfile

    pins = {}
    for variant in sorted(VARIANTS):
        with tempfile.TemporaryDirectory() as tmp:
            run = run_pinned(Path(tmp), variant)
            logged, signal = run.run.data.metrics, _signal(run)
        steady = {k: v for k, v in sorted(logged.items()) if "seconds" not in k and "latency" not in k}  # not clocks
        pins[variant] = {"metrics": steady,
                         "signal_sum": float(signal.sum()), "signal_abs_sum": float(signal.abs().sum())}
    everything = json.loads(PINS.read_text()) if PINS.exists() else {}
    PINS.write_text(json.dumps({**everything, CAPABILITY: pins}, indent=1) + "\n")
