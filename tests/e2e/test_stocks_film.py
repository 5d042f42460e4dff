"""``+experiment=stocks_film`` end to end on a tiny override: hrm_tiny, one fold, 2018-2022 of the 20-stock
panel; the index replayed on the CPCV paths beside the other baselines, and the symbol MI of the
conditioning on 20 symbols (up to log2(20) = 4.32 bits)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from dualhrq.train import train

from .conftest import assert_catalogue_matches, compose_tiny, runs_of

# the tiny fit's 3 steps (tiny_overrides) validate after its last batch, as the study's 48 do
TINY = ["+experiment=stocks_film", "model=hrm_tiny", "validation.folds=[4]", "data.source.start=2018-01-01",
        "data.source.end=2022-12-28", "trainer.val_check_interval=3"]


@pytest.mark.slow
def test_stocks_film_runs_end_to_end_with_the_index_on_the_same_paths(tmp_path):
    from skfolio.datasets import load_sp500_index

    cfg = compose_tiny(tmp_path, [*TINY, "task_name=stocks"])
    assert cfg.model.net.h.dim == 32 and cfg.data.stride == 20  # the override's model, the study's decision dates
    train(cfg)
    (run,) = runs_of(tmp_path, "stocks")
    m = run.data.metrics
    for name in ("buy_and_hold", "xs_momentum", "index"):
        assert {f"baseline/{name}/sharpe", f"vs/{name}/spa_pvalue", f"vs/{name}/rc_pvalue"} <= set(m)
        assert 0.0 <= m[f"vs/{name}/spa_pvalue"] <= 1.0
    assert "baseline/momentum/sharpe" not in m
    assert_catalogue_matches(run, cfg)
    returns = pl.read_parquet(tmp_path / "out" / "cpcv_returns.parquet")
    index = returns.filter(pl.col("strategy") == "index").sort("ts")
    model = returns.filter(pl.col("strategy") == "model").sort("ts")
    assert index["ts"].to_list() == model["ts"].to_list() and index.height >= 10
    raw = load_sp500_index()["SP500"]
    held = (raw.shift(-1) / raw - 1).loc[index["ts"].to_list()].to_numpy()  # the index held over (t, next day]
    np.testing.assert_allclose(index["net"].to_numpy(), held, rtol=1e-12)
    # every 20th trading day of the stocks is a decision date, so consecutive test dates are 20 days apart
    days = pl.Series(raw.index.to_numpy()).cast(pl.Datetime("us"))
    steps = np.diff(np.searchsorted(days.to_numpy(), index["ts"].to_numpy()))
    assert set(steps.tolist()) == {20}
    # the cross-section decides together: all 20 stocks on every decision date
    preds = pl.read_parquet(tmp_path / "out" / "oos_predictions.parquet")
    assert preds.group_by("ts").len()["len"].unique().to_list() == [20]
    summary = (tmp_path / "out" / "summary.txt").read_text()
    assert "index" in summary and "xs_momentum" in summary
    # the regime context says (almost) nothing about which of the 20 stocks it is
    assert 0.0 <= m["conditioning/mi_symbol_bits"] < 0.5


@pytest.mark.slow
def test_the_symbol_embedding_tells_the_20_stocks_apart_and_the_mi_gate_sees_it(tmp_path):
    cfg = compose_tiny(tmp_path, [*TINY, "task_name=stocks_pid", "model/conditioning=puzzle_id"])
    train(cfg)
    (run,) = runs_of(tmp_path, "stocks_pid")
    bits = run.data.metrics["conditioning/mi_symbol_bits"]
    assert bits <= math.log2(20) + 1e-9
    assert bits > 0.8 * math.log2(20)  # one learned vector per symbol: nearly all of H(symbol) = 4.32 bits
    assert run.data.tags["gate.conditioning_mi"] == "FAIL"
