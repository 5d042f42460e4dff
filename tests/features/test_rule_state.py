"""Rule-state features: Rule 201 in force and the close's distance to the LULD bands, from the market rule engine."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from dualhrq.data.synthetic import generate_bars
from dualhrq.features.engine import IntradayFeatureSpec, compute_features, feature_names
from dualhrq.features.rule_state import RULE_STATE_FEATURES, rule_state_features
from dualhrq.market.grid import build_grid
from dualhrq.market.luld import luld_state

from .test_intraday_features import altered_after, minute_bars  # noqa: F401  (module fixture: 4 symbols x 4 days)

LIGHT = IntradayFeatureSpec(short=3, medium=10, long=40, tsrv_k=3, cross_section=False)
N_BARS = 30
TRIGGER_MINUTE = 12  # day 2's bar whose low falls 11% below day 1's close


def two_day_bars() -> pl.DataFrame:
    """Two symbols, 30 minute bars a day; AAA's day-2 bar 12 trades down to 89 against a 100.00 prior close."""
    rows = []
    for day in (datetime(2024, 1, 2, 9, 30), datetime(2024, 1, 3, 9, 30)):
        for k in range(N_BARS):
            for symbol, level in (("AAA", 100.0), ("BBB", 50.0)):
                close = level + 0.05 * np.sin(k)
                low = close - 0.05
                if symbol == "AAA" and day.day == 3 and k == TRIGGER_MINUTE:
                    low = 0.89 * level
                rows.append({"ts": day + timedelta(minutes=k), "symbol": symbol, "open": close, "high": close + 0.05,
                             "low": low, "close": close, "volume": 1000.0, "trades": 10, "bid": close - 0.01,
                             "ask": close + 0.01, "bid_size": 300.0, "ask_size": 300.0, "luld_tier": 1})
    return pl.DataFrame(rows).with_columns(pl.col("ts").cast(pl.Datetime("us")), pl.col("luld_tier").cast(pl.Int8))


def test_names_are_regime_features_and_the_flag_removes_them() -> None:
    inputs, regime_cols = feature_names(LIGHT)
    assert set(RULE_STATE_FEATURES) <= set(regime_cols) and inputs[-3:] == list(RULE_STATE_FEATURES)
    inputs_off, regime_off = feature_names(IntradayFeatureSpec(rule_state=False))
    assert not set(RULE_STATE_FEATURES) & (set(inputs_off) | set(regime_off))


def test_ssr_starts_at_the_trigger_bar_and_holds_to_the_close() -> None:
    bars = two_day_bars()
    out = rule_state_features(bars)
    assert_frame_equal(out.select("symbol", "ts"), bars.select("symbol", "ts"))
    aaa = out.filter(pl.col("symbol") == "AAA").sort("ts")["ssr_active"].to_numpy()
    day1, day2 = aaa[:N_BARS], aaa[N_BARS:]
    assert (day1 == 0).all()
    assert (day2[:TRIGGER_MINUTE] == 0).all() and (day2[TRIGGER_MINUTE:] == 1).all()
    assert (out.filter(pl.col("symbol") == "BBB")["ssr_active"] == 0).all()


def test_luld_distances_match_the_engine_bands_and_are_positive_inside_them() -> None:
    bars = two_day_bars()
    out = compute_features(bars, LIGHT)
    grid = build_grid(bars)
    state = luld_state(grid)
    for t, s in ((0, 0), (5, 1), (N_BARS + TRIGGER_MINUTE, 0), (2 * N_BARS - 1, 1)):
        row = out.filter((pl.col("ts") == grid.bar_ts[t]) & (pl.col("symbol") == grid.symbols[s]))
        close = grid.close[t, s]
        assert row["close"].item() == close
        assert row["luld_dist_lower"].item() == pytest.approx((close - state.lower[t, s]) / close)
        assert row["luld_dist_upper"].item() == pytest.approx((state.upper[t, s] - close) / close)
    inside = out.filter(pl.col("ssr_active") == 0)  # flat prices: every close sits inside its bands
    assert (inside["luld_dist_lower"] > 0).all() and (inside["luld_dist_upper"] > 0).all()
    assert out.select(RULE_STATE_FEATURES).null_count().sum_horizontal().item() == 0


def test_rule_state_is_causal(minute_bars: pl.DataFrame) -> None:  # noqa: F811
    """Changing every bar after t (prices, quotes, sizes, volume) leaves the rule state at or before t unchanged."""
    before = compute_features(minute_bars, LIGHT).select("ts", "symbol", *RULE_STATE_FEATURES)
    rng = np.random.default_rng(7)
    for cut in (minute_bars["ts"].unique().sort()[200], minute_bars["ts"].unique().sort()[900]):
        later = pl.col("ts") > cut
        changed = altered_after(minute_bars, later, rng, 0.15)
        after = compute_features(changed, LIGHT).select("ts", "symbol", *RULE_STATE_FEATURES)
        assert not after.equals(before)
        assert_frame_equal(after.filter(~later), before.filter(~later), check_exact=True)


def test_the_synthetic_market_triggers_the_short_sale_restriction() -> None:
    bars = generate_bars(4, n_days=10, seed=1).collect()
    out = rule_state_features(bars)
    assert 0 < out["ssr_active"].sum() < out.height
    assert np.isfinite(out.select(RULE_STATE_FEATURES[1:]).to_numpy()).all()
