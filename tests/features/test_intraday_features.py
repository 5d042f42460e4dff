"""Intraday features: hand-worked formulas, cross-sectional ranks, the composed query's causality."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from scipy.stats import rankdata

from dualhrq.config import build, compose_train
from dualhrq.data.synthetic import generate_bars, generate_option_chain
from dualhrq.errors import ConfigError, DataError
from dualhrq.features import microstructure as micro
from dualhrq.features.cross_section import cross_sectional_rank
from dualhrq.features.engine import SURFACE_FEATURES, IntradayFeatureSpec, compute_features, feature_names
from dualhrq.features.options import surface_features

from .test_regime_features import evaluate

C = [10.0, 10.1, 10.1, 10.0, 10.0, 10.2]
V = [100.0, 200.0, 300.0, 100.0, 0.0, 400.0]


def test_session_vwap_is_the_cumulative_dollar_volume_over_volume() -> None:
    got = evaluate(micro.vwap(pl.col("p"), pl.col("v")), p=C, v=V)
    expected = np.cumsum(np.multiply(C, V)) / np.cumsum(V)
    np.testing.assert_allclose(got, expected)
    dev = evaluate(micro.vwap_deviation(pl.col("c"), pl.col("w")), c=[10.5], w=[10.0])
    np.testing.assert_allclose(dev, [np.log(1.05)])


def test_tick_rule_carries_the_last_sign_through_zero_ticks() -> None:
    # changes: -, +, 0, -, 0, +  -> signs 0 (no change yet), +1, +1, -1, -1, +1
    np.testing.assert_array_equal(evaluate(micro.tick_sign(pl.col("c")), c=C), [0, 1, 1, -1, -1, 1])


def test_signed_volume_imbalance_by_hand() -> None:
    got = evaluate(micro.signed_volume_imbalance(pl.col("c"), pl.col("v"), 3), c=C, v=V)
    # window of bars 3..5: signs -1, -1, +1 with volumes 100, 0, 400 -> 300 / 500
    assert got[5] == pytest.approx(300 / 500)
    # bars 1..3: +200 + 300 - 100 over 600
    assert got[3] == pytest.approx(400 / 600)


def test_depth_imbalance_by_hand() -> None:
    got = evaluate(micro.depth_imbalance(pl.col("b"), pl.col("a"), 2), b=[300.0, 100.0, 0.0], a=[100.0, 100.0, 0.0])
    np.testing.assert_allclose(got, [np.nan, (0.5 + 0.0) / 2, 0.0])


# Quotes at the close of five bars, one case of Cont, Kukanov & Stoikov (2014, eq. 2) per step:
#   bar 1: bid up (+qb_1 = +500),           ask unchanged (-(qa_1 - qa_0) = +100)  -> e =  600
#   bar 2: bid unchanged (qb_2 - qb_1 = -300), ask down (-qa_2 = -400)            -> e = -700
#   bar 3: bid down (-qb_2 = -200),          ask up (+qa_2 = +400)                -> e =  200
#   bar 4: nothing moves                                                           -> e =    0
QUOTES = {"pb": [10.00, 10.01, 10.01, 10.00, 10.00], "qb": [300.0, 500.0, 200.0, 700.0, 700.0],
          "pa": [10.05, 10.05, 10.04, 10.06, 10.06], "qa": [200.0, 100.0, 400.0, 300.0, 300.0]}
QUOTE_COLS = (pl.col("pb"), pl.col("qb"), pl.col("pa"), pl.col("qa"))


def test_order_flow_events_follow_each_price_change_case() -> None:
    np.testing.assert_array_equal(evaluate(micro.order_flow_event(*QUOTE_COLS), **QUOTES), [np.nan, 600, -700, 200, 0])
    # a bid that rises while its size shrinks still adds its whole new size; a falling ask likewise
    both_improve = {"pb": [10.00, 10.02], "qb": [900.0, 100.0], "pa": [10.05, 10.03], "qa": [900.0, 100.0]}
    assert evaluate(micro.order_flow_event(*QUOTE_COLS), **both_improve)[1] == 100 - 100


def test_order_flow_imbalance_is_the_window_sum_over_average_depth() -> None:
    # average depth (qb + qa) / 2 per bar: 250, 300, 300, 500, 500
    got = evaluate(micro.order_flow_imbalance(*QUOTE_COLS, 2), **QUOTES)
    np.testing.assert_allclose(got, [np.nan, np.nan, (600 - 700) / 300, (-700 + 200) / 400, (200 + 0) / 500])
    got = evaluate(micro.order_flow_imbalance(*QUOTE_COLS, 3), **QUOTES)
    np.testing.assert_allclose(got[3], (600 - 700 + 200) / ((300 + 300 + 500) / 3))
    emptied = {"pb": [10.0, 10.0, 10.0], "qb": [300.0, 0.0, 0.0], "pa": [10.1, 10.1, 10.1], "qa": [0.0, 0.0, 0.0]}
    np.testing.assert_array_equal(evaluate(micro.order_flow_imbalance(*QUOTE_COLS, 2), **emptied), [np.nan, np.nan, 0])


def test_tick_counts_by_hand() -> None:
    # changes over bars 1..5: +, 0, -, 0, +  -> 2 ups of 3 moves, 2 of 5 unchanged
    assert evaluate(micro.uptick_share(pl.col("c"), 5), c=C)[5] == pytest.approx(2 / 3 - 0.5)
    assert evaluate(micro.zero_return_share(pl.col("c"), 5), c=C)[5] == pytest.approx(2 / 5)


def test_spread_trade_size_and_session_clock() -> None:
    assert evaluate(micro.relative_spread(pl.col("b"), pl.col("a")), b=[99.0], a=[101.0])[0] == pytest.approx(
        np.log(101 / 99))
    got = evaluate(micro.mean_trade_size_ratio(pl.col("v"), pl.col("n"), 1, 3), v=[100.0, 100.0, 900.0],
                   n=[1, 2, 3])
    assert got[2] == pytest.approx(np.log((900 / 3) / (1100 / 6)))
    ts = [datetime(2024, 1, 2, 9, 30), datetime(2024, 1, 2, 12, 45), datetime(2024, 1, 2, 15, 59)]
    np.testing.assert_allclose(evaluate(micro.session_progress(pl.col("ts")), ts=ts), [0, 195 / 390, 389 / 390])


def test_cross_sectional_rank_matches_scipy_with_ties_and_nulls() -> None:
    values = [3.0, 1.0, 3.0, None, 2.0, 5.0, None]
    frame = pl.DataFrame({"ts": [0, 0, 0, 0, 0, 1, 1], "x": values})
    got = frame.select(cross_sectional_rank(pl.col("x")))["x"].to_list()
    ranks = rankdata([3.0, 1.0, 3.0, 2.0], method="average")
    np.testing.assert_allclose(got[:3] + got[4:5], ((ranks - 1) / 3)[[0, 1, 2, 3]])
    assert got[3] is None and got[5] == 0.5 and got[6] is None


SPEC = IntradayFeatureSpec(short=3, medium=10, long=40, tsrv_k=3, vol_regime=True, regime_block=10,
                           regime_fit_days=2, options=True)


def features(bars: pl.DataFrame, spec: IntradayFeatureSpec = SPEC) -> pl.DataFrame:
    """compute_features with the end-of-day option chains the synthetic market derives from ``bars``."""
    chain = generate_option_chain(bars, n_expiries=2, n_strikes=7) if spec.options else None
    return compute_features(bars, spec, options=chain)


@pytest.fixture(scope="module")
def minute_bars() -> pl.DataFrame:
    return generate_bars(4, n_days=4, seed=2).collect()


def test_names_need_no_data_and_match_the_columns(minute_bars: pl.DataFrame) -> None:
    inputs, regime_cols = feature_names(SPEC)
    assert set(regime_cols) <= set(inputs) and len(set(inputs)) == len(inputs) == 43
    assert {"vol_regime", "tsrv_vol_40", "atm_iv", "rr25"} <= set(regime_cols) and "rank_mom_10" in inputs
    assert {"depth_imbalance_3", "ofi_3", "depth_imbalance_10", "ofi_10", "rank_depth_imbalance_10"} <= set(inputs)
    out = features(minute_bars)
    assert out.columns == ["ts", "symbol", "close", *inputs]
    assert_frame_equal(out.select("ts", "symbol", "close"), minute_bars.select("ts", "symbol", "close"))
    usable = out.drop_nulls()
    assert usable.height > 0.3 * out.height and np.isfinite(usable.drop("ts", "symbol").to_numpy()).all()


def test_without_quotes_or_trades_the_flow_comes_from_the_tick_rule(minute_bars: pl.DataFrame) -> None:
    bare = minute_bars.select("ts", "symbol", "open", "high", "low", "close", "volume")
    spec = IntradayFeatureSpec(quotes=False, trades=False, rule_state=False)
    out = compute_features(bare, spec)
    assert {"signed_volume_5", "signed_volume_30"} <= set(out.columns)
    assert not {"spread", "depth_imbalance_30", "ofi_30"} & set(out.columns)
    expected = bare.select(micro.signed_volume_imbalance(pl.col("close"), pl.col("volume"), 30).over("symbol"))
    np.testing.assert_allclose(out["signed_volume_30"].to_numpy(), expected.to_series().to_numpy())
    with pytest.raises(DataError, match=r"data.features.quotes=true but the bars lack \['bid'"):
        compute_features(bare, IntradayFeatureSpec())


def altered_after(bars: pl.DataFrame, later: pl.Expr, rng: np.random.Generator, move: float) -> pl.DataFrame:
    """``bars`` with prices and quotes scaled by up to +-``move`` and volume and sizes redrawn where ``later``."""
    n = bars.height
    scale = pl.lit(rng.uniform(1 - move, 1 + move, n))
    changed = bars.with_columns(pl.when(later).then(pl.col(c) * scale).otherwise(pl.col(c))
                                for c in ("open", "high", "low", "close", "bid", "ask"))
    return changed.with_columns(
        pl.when(later).then(pl.col(c) * pl.lit(rng.uniform(0.1, 5.0, n)).round(0).clip(1))
        .otherwise(pl.col(c)) for c in ("volume", "bid_size", "ask_size"))


def test_every_intraday_feature_is_causal(minute_bars: pl.DataFrame) -> None:
    """Changing every bar after t (prices, quotes, sizes, volume) leaves all features at or before t unchanged."""
    before = features(minute_bars)
    rng = np.random.default_rng(4)
    for cut in (minute_bars["ts"].unique().sort()[900], minute_bars["ts"].unique().sort()[1300]):
        later = pl.col("ts") > cut
        after = features(altered_after(minute_bars, later, rng, 0.03))
        assert not after.equals(before)
        exact = [c for c in before.columns if c not in SURFACE_FEATURES]
        assert_frame_equal(after.filter(~later).select(exact), before.filter(~later).select(exact), check_exact=True)
        # the SVI fits of earlier sessions run in the same vectorised batch as the changed ones:
        # equal up to floating-point summation order (seen: 1e-16), never by more
        surface = [c for c in before.columns if c in SURFACE_FEATURES]
        assert_frame_equal(after.filter(~later).select(surface), before.filter(~later).select(surface),
                           rel_tol=0, abs_tol=1e-12)


def test_no_feature_carries_the_symbol_name_or_price_level(minute_bars: pl.DataFrame) -> None:
    spec = IntradayFeatureSpec(short=3, medium=10, long=40, tsrv_k=3, cross_section=False)
    one = minute_bars.filter(pl.col("symbol") == "SYN001")
    rescaled = one.with_columns(pl.col("open", "high", "low", "close", "bid", "ask") * 8.0,
                                pl.col("volume", "bid_size", "ask_size") * 3.0, symbol=pl.lit("OTHER"))
    names, _ = feature_names(spec)
    banded = ["luld_dist_lower", "luld_dist_upper"]  # LULD bands are rounded to the cent: a residue of <= 0.5c/price
    got, expected = compute_features(rescaled, spec), compute_features(one, spec)
    rest = [n for n in names if n not in banded]
    assert_frame_equal(got.select(rest), expected.select(rest), rel_tol=1e-9, abs_tol=1e-12)
    assert_frame_equal(got.select(banded), expected.select(banded), rel_tol=0, abs_tol=1e-4)


def test_surface_features_come_from_the_previous_sessions_chain(minute_bars: pl.DataFrame) -> None:
    chain = generate_option_chain(minute_bars, n_expiries=2, n_strikes=7)
    out = compute_features(minute_bars, SPEC, options=chain).with_columns(session=pl.col("ts").dt.date())
    surface = surface_features(chain)
    sessions = out["session"].unique().sort().to_list()
    first = out.filter(pl.col("session") == sessions[0])
    assert first["atm_iv"].null_count() == first.height
    for day, previous in zip(sessions[1:], sessions, strict=False):
        got = out.filter(pl.col("session") == day).group_by("symbol").agg(pl.col("atm_iv", "rr25").unique())
        want = surface.filter(pl.col("date") == previous)
        joined = got.explode("atm_iv", "rr25").join(want, on="symbol", suffix="_want")
        assert joined.height == 4 and (joined["atm_iv"] == joined["atm_iv_want"]).all()
        assert (joined["rr25"] == joined["rr25_want"]).all()
    with pytest.raises(ConfigError, match=r"^features\.options=true but no option chain") as err:
        compute_features(minute_bars, SPEC)
    assert err.value.field == "features.options"


@pytest.mark.parametrize("kwargs", [dict(short=1), dict(medium=200), dict(tsrv_k=1), dict(regime_block=1)])
def test_impossible_windows_are_config_errors(kwargs) -> None:
    with pytest.raises(ConfigError):
        IntradayFeatureSpec(**kwargs)
    cfg = compose_train(["data=synthetic_intraday", *(f"data.features.{k}={v}" for k, v in kwargs.items())])
    with pytest.raises(ConfigError, match=r"^data\.features[.:]"):
        build(cfg.data.features)
