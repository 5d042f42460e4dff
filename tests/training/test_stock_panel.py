"""The close-only stock panel (``data=sp500_stocks``) composes, builds samples and says what it left out."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dualhrq.config import build
from dualhrq.features.engine import CloseFeatureSpec
from dualhrq.train import describe_data
from tests.e2e.conftest import compose_tiny


def test_stock_panel_config_builds_close_only_samples_and_labels_the_left_out_features(tmp_path: Path) -> None:
    cfg = compose_tiny(tmp_path, ["data=sp500_stocks", "data.source.symbols=[KO,PEP,XOM]",
                                  "data.source.start=2007-01-01", "data.source.end=2009-12-31"])
    dm = build(cfg.data)
    assert isinstance(dm.spec, CloseFeatureSpec)
    samples = dm.prepare()
    assert samples.symbols == ["KO", "PEP", "XOM"]
    assert "beta_60" in samples.feature_names and "mkt_rvol_20" in samples.regime_names
    # warm-up: bipower volatility needs 20 products of adjacent returns (22 closes: first at bar 21),
    # its z-score 120 of them (bar 140 is the first with every input), and a window 32 such rows,
    # so the first decision is bar 171 (0-based) of 2007
    days = np.unique(samples.row_ts)
    assert samples.t.min() == days[171]
    label, _ = describe_data(cfg, dm)
    assert label.startswith("sp500_stocks; close-only bars: range and volume features left out (")
    assert "gap" in label and "amihud_20_60" in label


def test_factor_etf_config_builds_a_panel_whose_styles_join_in_2014(tmp_path: Path) -> None:
    cfg = compose_tiny(tmp_path, ["data=factor_etfs", "data.source.start=2013-01-01"])
    dm = build(cfg.data)
    samples = dm.prepare()
    assert samples.symbols == ["MTUM", "QUAL", "SIZE", "SP500", "USMV", "VLUE"]
    first = {s: samples.t[samples.symbol_id == k].min() for k, s in enumerate(samples.symbols)}
    days = np.unique(samples.row_ts)
    assert days[0] == np.datetime64("2013-01-02")  # the market factor's closes start with the range
    # the styles start on 2014-01-02 and need 171 bars of their own, as the stocks do
    style_days = days[days >= np.datetime64("2014-01-02")]
    assert all(first[s] == style_days[171] for s in ("MTUM", "QUAL", "SIZE", "USMV", "VLUE"))
    # alone in 2013 the market factor has no dispersion across symbols (it needs two returns on a day): its
    # first is on 2014-01-03, the styles' first return; the 20-day mean of it 19 dates on, a window 31 more
    assert first["SP500"] == style_days[1 + 19 + 31]
    assert not any(n.startswith(("beta_", "mkt_")) for n in samples.feature_names)  # no index inputs here
