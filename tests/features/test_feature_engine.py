"""The composed feature query: names, causality, scale-freedom, VIX join."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from dualhrq.config import build as build_node
from dualhrq.config import compose_train, located
from dualhrq.errors import ConfigError, DataError
from dualhrq.features.engine import FeatureSpec, compute_features, feature_names, input_lookback

NO_VIX = FeatureSpec(use_vix=False, regime_window=None)  # raw levels: the formulas as written


def test_names_need_no_data_and_match_the_computed_columns(bars: pl.DataFrame) -> None:
    inputs, regime_cols = feature_names(NO_VIX)
    assert len(inputs) == 19 and len(regime_cols) == 7
    assert set(regime_cols) <= set(inputs) and len(set(inputs)) == len(inputs)
    assert compute_features(bars, NO_VIX).columns == ["ts", "symbol", "close", *inputs]


def test_vix_adds_level_and_availability_to_both_lists() -> None:
    inputs, regime_cols = feature_names(FeatureSpec())
    assert inputs[-2:] == regime_cols[-2:] == ["vix_log", "vix_available"]
    assert len(inputs) == 21


def test_window_lengths_appear_in_the_names() -> None:
    inputs, _ = feature_names(FeatureSpec(short=3, medium=10, long=40, use_vix=False))
    assert {"mom_3", "mom_10", "mom_40", "rvol_10", "amihud_10_40", "vol_ratio_3_40"} <= set(inputs)


@pytest.mark.parametrize("windows", [dict(short=1), dict(medium=70), dict(short=20, medium=20)])
def test_windows_out_of_order_are_a_config_error(windows: dict[str, int]) -> None:
    with pytest.raises(ConfigError, match=r"^windows must satisfy 2 <= short <") as err:
        FeatureSpec(**windows)
    assert err.value.field == ""  # about the spec as a whole
    cfg = compose_train([f"++data.features.{k}={v}" for k, v in windows.items()])
    with pytest.raises(ConfigError, match=r"^data\.features: windows must satisfy 2 <= short <"):
        build_node(cfg.data.features)


def test_rows_keep_the_bar_order_and_warm_up_ends_at_the_long_window(bars: pl.DataFrame) -> None:
    out = compute_features(bars, NO_VIX)
    assert_frame_equal(out.select("ts", "symbol", "close"), bars.select("ts", "symbol", "close"))
    complete = out.drop_nulls().group_by("symbol").agg(pl.col("ts").min())
    assert complete["ts"].unique().to_list() == [bars["ts"][60]]  # long=60 bars of returns
    assert np.isfinite(out.drop_nulls().drop("ts", "symbol").to_numpy()).all()


def _walk(n: int, seed: int = 1) -> pl.DataFrame:
    """One symbol of ``n`` random-walk daily bars."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[100.0, close[:-1]]
    return pl.DataFrame({"ts": np.arange(n).astype("datetime64[D]").astype("datetime64[us]"), "symbol": "AAA",
                         "open": open_, "high": np.maximum(open_, close) * 1.004,
                         "low": np.minimum(open_, close) * 0.996, "close": close,
                         "volume": rng.lognormal(12, 0.5, n)})


def test_regime_window_gives_trailing_z_scores_of_the_levels() -> None:
    bars, window = _walk(300), 50
    _, regime = feature_names(NO_VIX)
    levels = compute_features(bars, NO_VIX).select(regime).to_numpy()
    relative = compute_features(bars, FeatureSpec(use_vix=False, regime_window=window)).select(regime).to_numpy()
    for row in (60 + window - 1, 200, 299):  # first complete z-score, then later rows
        past = levels[row - window + 1 : row + 1]
        expected = (levels[row] - past.mean(axis=0)) / past.std(axis=0, ddof=1)
        np.testing.assert_allclose(relative[row], expected, rtol=1e-9)
    assert np.isnan(relative[60 + window - 2, -1])  # amihud (levels from row 60): one short of a full window


@pytest.mark.parametrize("spec", [NO_VIX, FeatureSpec(use_vix=False), FeatureSpec(use_vix=False, long=30,
                                                                                    regime_window=10)])
def test_a_bar_reaches_no_feature_more_than_the_lookback_later(spec: FeatureSpec) -> None:
    # The embargo clears input_lookback bars; a bar must matter up to exactly that far, and no further.
    bars, hit = _walk(400), 150
    lookback = input_lookback(spec)
    names, _ = feature_names(spec)
    base = compute_features(bars, spec).select(names).to_numpy()
    shocked = bars.with_columns(*(pl.when(pl.int_range(pl.len()) == hit).then(pl.col(c) * 1.3).otherwise(pl.col(c))
                                  for c in ("open", "high", "low", "close", "volume")))
    moved = compute_features(shocked, spec).select(names).to_numpy()
    # rolling sums carry round-off residue past their window: compare beyond it
    changed = np.flatnonzero(~np.isclose(base, moved, rtol=1e-9, atol=1e-12, equal_nan=True).all(axis=1))
    assert changed.min() == hit and changed.max() == hit + lookback


def test_a_zero_volume_bar_leaves_volume_features_finite(bars: pl.DataFrame) -> None:
    row = pl.int_range(pl.len()) == 80
    gap = bars.with_columns(volume=pl.when(row).then(0.0).otherwise(pl.col("volume")))
    names, _ = feature_names(NO_VIX)
    after_warm_up = compute_features(gap, NO_VIX)[80:150].select(names).to_numpy()
    assert np.isfinite(after_warm_up).all()


def test_every_feature_is_causal(bars: pl.DataFrame) -> None:
    """Rescaling every bar after t leaves every feature at or before t bit-identical."""
    rng = np.random.default_rng(11)
    before = compute_features(bars, NO_VIX)
    for cut in (bars["ts"][30], bars["ts"][90]):
        later = pl.col("ts") > cut
        price = pl.lit(rng.uniform(0.5, 2.0, bars.height))
        volume = pl.lit(rng.uniform(0.1, 10.0, bars.height))
        changed = bars.with_columns(
            pl.when(later).then(pl.col("open", "high", "low", "close") * price).otherwise(
                pl.col("open", "high", "low", "close")
            ),
            pl.when(later).then(pl.col("volume") * volume).otherwise(pl.col("volume")),
        )
        after = compute_features(changed, NO_VIX)
        assert not after.equals(before)
        assert_frame_equal(after.filter(~later), before.filter(~later), check_exact=True)


def test_features_carry_no_price_level_volume_scale_or_name(bars: pl.DataFrame) -> None:
    one = bars.filter(pl.col("symbol") == "AAA")
    rescaled = one.with_columns(
        pl.col("open", "high", "low", "close") * 37.5,
        pl.col("volume") * 0.001,
        symbol=pl.lit("ZZZ"),
    )
    names, _ = feature_names(NO_VIX)
    expected = compute_features(one, NO_VIX).select(names)
    got = compute_features(rescaled, NO_VIX).select(names)
    assert_frame_equal(got, expected, rel_tol=1e-9, abs_tol=1e-12)


def test_symbols_do_not_leak_into_each_other(bars: pl.DataFrame) -> None:
    both = compute_features(bars, NO_VIX)
    alone = compute_features(bars.filter(pl.col("symbol") == "BBB"), NO_VIX)
    assert_frame_equal(both.filter(pl.col("symbol") == "BBB"), alone, check_exact=True)


def test_vix_close_is_used_from_the_next_bar_and_goes_stale(bars: pl.DataFrame) -> None:
    # The VIX close is struck at 16:15 ET, after the 16:00 decision: a bar sees the previous VIX day's close.
    ts = bars.filter(pl.col("symbol") == "AAA")["ts"]
    vix = pl.DataFrame({"ts": ts[100:103], "vix": [20.0, 40.0, float("nan")]})  # day 102's value is missing
    out = compute_features(bars, FeatureSpec(), vix=vix).filter(pl.col("symbol") == "AAA")
    gap = (ts - ts[101]).dt.total_days().to_numpy()  # calendar days since the last VIX close (day 101)
    fresh = (gap > 0) & (gap <= 5)
    expected_log = np.where(fresh, np.log(2.0), 0.0)  # log(40 / 20) while day 101's close is the latest
    expected_log[100] = 0.0
    expected_available = (fresh | (np.arange(len(ts)) == 101)).astype(float)  # day 101 sees day 100's 20
    np.testing.assert_allclose(out["vix_log"].to_numpy(), expected_log)
    np.testing.assert_array_equal(out["vix_available"].to_numpy(), expected_available)
    assert out["vix_available"][100] == 0  # the first VIX day has no earlier close


def test_vix_of_a_day_changes_no_feature_of_that_day_or_before(bars: pl.DataFrame) -> None:
    ts = bars.filter(pl.col("symbol") == "AAA")["ts"]
    vix = pl.DataFrame({"ts": ts[50:150], "vix": np.linspace(12.0, 30.0, 100)})
    base = compute_features(bars, FeatureSpec(), vix=vix)
    moved = compute_features(bars, FeatureSpec(), vix=vix.with_columns(
        pl.when(pl.col("ts") == ts[120]).then(80.0).otherwise(pl.col("vix")).alias("vix")))
    changed = base["ts"].to_numpy()[(base["vix_log"] != moved["vix_log"]).to_numpy()]
    assert len(changed) and changed.min() > ts[120]


def test_use_vix_without_a_series_is_a_config_error(bars: pl.DataFrame) -> None:
    with pytest.raises(ConfigError, match=r"^data\.features\.use_vix is true but no VIX series"):
        with located("data"):  # as the reader of the data config
            compute_features(bars, FeatureSpec())


DAY = datetime(2015, 1, 1)


@pytest.mark.parametrize(
    "vix, message",
    [
        (pl.DataFrame({"ts": [DAY], "VIX": [15.0]}), r"vix: missing columns \['vix'\]"),
        (pl.DataFrame({"ts": [DAY], "vix": [0.0]}), r"vix: non-positive 'vix' values"),
        (pl.DataFrame({"ts": [DAY, DAY], "vix": [15.0, 16.0]}), r"vix: duplicate 'ts' rows"),
    ],
)
def test_bad_vix_is_a_data_error(bars: pl.DataFrame, vix: pl.DataFrame, message: str) -> None:
    with pytest.raises(DataError, match=message):
        compute_features(bars, FeatureSpec(), vix=vix)


def test_bars_are_validated_first(bars: pl.DataFrame) -> None:
    with pytest.raises(DataError, match=r"compute_features\(bars\): missing columns \['volume'\]"):
        compute_features(bars.drop("volume"), NO_VIX)


def test_extra_features_must_be_expressions_with_new_names():
    with pytest.raises(ConfigError, match=r"^extra\.bad must build a polars expression"):
        FeatureSpec(extra={"bad": 3.0})
    with pytest.raises(ConfigError, match=r"\['gap'\]"):
        FeatureSpec(extra={"gap": pl.col("close")})
    with pytest.raises(ConfigError, match=r"\['x'\]"):
        FeatureSpec(extra={"x": pl.col("close")}, extra_regime={"x": pl.col("open")})
    names, regime = feature_names(FeatureSpec(extra={"x": pl.col("close")}, extra_regime={"y": pl.col("open")}))
    assert "x" in names and "x" not in regime and {"y"} <= set(regime) <= set(names)


def test_an_extra_feature_error_names_its_config_path():
    from dualhrq.config import build, compose_train

    cfg = compose_train(["+data.features.extra.bad._target_=builtins.float"])
    with pytest.raises(ConfigError, match=r"^data\.features\.extra\.bad must build a polars expression"):
        build(cfg.data.features)
