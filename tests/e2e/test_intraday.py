"""Intraday data end to end: the synthetic market and a user's minute-bar parquet tree."""

from __future__ import annotations

import numpy as np
import pytest

from dualhrq.data.synthetic import write_bars
from dualhrq.train import train

from .conftest import compose_tiny, runs_of

pytestmark = pytest.mark.slow


def test_synthetic_intraday_trains_and_is_labelled_synthetic(tmp_path):
    value = train(compose_tiny(tmp_path, ["data=synthetic_intraday", "data.source.start=2024-01-02",
                                          "data.source.n_symbols=4", "data.source.n_days=20",
                                          "data.features.regime_fit_days=5", "data.features.options=true",
                                          "task_name=synthetic"]))
    assert np.isfinite(value)
    (run,) = runs_of(tmp_path, "synthetic")
    assert run.info.status == "FINISHED"
    assert run.data.tags["data.synthetic"] == "True" and run.data.tags["data.name"] == "synthetic_intraday"
    assert run.data.params["data.features._target_"] == "dualhrq.features.engine.IntradayFeatureSpec"
    assert run.data.params["data.features.options"] == "True"
    assert {f"fold{i}-oos/sharpe" for i in range(5)} <= set(run.data.metrics)
    assert "SYNTHETIC" in (tmp_path / "out" / "summary.txt").read_text()


def test_a_minute_bar_parquet_tree_trains(tmp_path):
    write_bars(tmp_path / "bars", n_symbols=3, n_days=15, seed=7)
    value = train(compose_tiny(tmp_path, ["data=parquet_intraday", f"data.path={tmp_path / 'bars'}",
                                          "data.features.regime_fit_days=5", "validation.folds=[0]",
                                          "task_name=pq"]))
    assert np.isfinite(value)
    (run,) = runs_of(tmp_path, "pq")
    assert run.data.tags["data.synthetic"] == "False" and run.data.tags["data.name"] == "parquet_intraday"
    assert "SYNTHETIC" not in (tmp_path / "out" / "summary.txt").read_text()
