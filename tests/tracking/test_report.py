"""The run report: every figure drawn and inlined, the tables present, nothing fetched from outside."""

import re
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from dualhrq.report import plots
from dualhrq.report.run import write_run_report
from dualhrq.validation.evidence import StatsSettings, Trials, evaluate_paths
from dualhrq.validation.gates import Gate, evaluate_gates

T = 200
DAYS = [datetime(2021, 1, 1) + timedelta(days=i) for i in range(T)]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _inputs(regimes: bool):
    rng = np.random.default_rng(0)
    market = rng.normal(0.0004, 0.01, T)
    returns = pl.concat([pl.DataFrame({"ts": DAYS, "path": p, "strategy": s, "net": net})
                         for p in range(2) for s, net in (("model", rng.normal(0.0005, 0.008, T)),
                                                          ("buy_and_hold", market))])
    evidence = evaluate_paths(returns, "buy_and_hold", Trials(4, 1e-4, "config"), StatsSettings(bootstrap_reps=50))
    prices = pl.DataFrame({"ts": DAYS * 2, "symbol": ["A"] * T + ["B"] * T,
                           "close": np.r_[np.cumprod(1 + market), np.cumprod(1 + market / 2)] * 100})
    labels = pl.DataFrame({"ts": DAYS * 2, "symbol": ["A"] * T + ["B"] * T,
                           "regime": np.r_[np.repeat([0, 1], T // 2), np.repeat([1, 2], T // 2)]})
    gates = evaluate_gates([Gate("dd", "oos/max_drawdown", below=0.15), Gate("sim", "sim/violations", at_most=0)],
                           evidence.metrics)
    return dict(evidence=evidence, returns=returns, prices=prices, regimes=labels if regimes else None,
                gates=gates)


def _report(tmp_path, regimes=True):
    return write_run_report(tmp_path, title="run x", intro="synthetic data", fold_rows=[{"fold": 0, "n": 5}],
                            budget_table="total 10", config_yaml="model:\n  dim: <32>\n", rolling_window=20,
                            periods_per_year=252, **_inputs(regimes))


def test_report_inlines_every_figure_and_has_the_tables(tmp_path):
    files = _report(tmp_path)
    assert sorted(p.name for p in files.plots) == ["drawdown.png", "equity.png", "path_sharpe.png",
                                                   "regime_timeline.png", "rolling_sharpe.png"]
    assert all(p.read_bytes().startswith(PNG_MAGIC) for p in files.plots)
    html = files.html.read_text()
    assert len(re.findall(r"<img [^>]*src='data:image/png;base64,", html)) == 5
    assert not re.search(r"(src|href)=['\"]?(https?:|file:|/)", html)  # self-contained
    for table_id in ("gates", "headline", "paths", "baselines", "folds"):
        assert f"<table id='{table_id}'>" in html
    assert "not evaluated" in html and "dim: &lt;32&gt;" in html  # config escaped


def test_regime_timeline_shows_labels_or_says_there_are_none():
    inputs = _inputs(regimes=True)
    with_labels = plots.regime_timeline(inputs["prices"], inputs["regimes"])
    strip = with_labels.axes[1]
    assert len(strip.collections) == 1  # the label mesh
    np.testing.assert_array_equal(strip.collections[0].get_array().reshape(2, T), inputs["regimes"].pivot(
        on="symbol", index="ts", values="regime").sort("ts").select("A", "B").to_numpy().T)
    without = plots.regime_timeline(inputs["prices"], None)
    assert "no regime labels" in without.axes[1].texts[0].get_text()
