"""Close-only daily features (``CloseFeatureSpec``) checked against numpy/scipy on a small random panel."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from scipy.stats import rankdata

from dualhrq.errors import ConfigError, DataError
from dualhrq.features.engine import (
    CloseFeatureSpec,
    FeatureSpec,
    compute_features,
    feature_names,
    input_lookback,
    left_out_features,
)

N_DAYS, SYMBOLS = 260, ("AAA", "BBB", "CCC", "DDD")
SPEC = CloseFeatureSpec(short=3, medium=10, long=30, regime_window=20)


def _panel(seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    days = [datetime(2020, 1, 1) + timedelta(days=i) for i in range(N_DAYS)]
    market = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal(N_DAYS)))
    frames = []
    for k, name in enumerate(SYMBOLS):
        r = (0.5 + 0.4 * k) * np.diff(np.log(market), prepend=np.log(100)) + 0.01 * rng.standard_normal(N_DAYS)
        frames.append(pl.DataFrame({"ts": days, "symbol": name, "close": 50 * np.exp(np.cumsum(r))}))
    return pl.concat(frames), pl.DataFrame({"ts": days, "close": market})


@pytest.fixture(scope="module")
def panel() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    bars, market = _panel()
    return bars, market, compute_features(bars, SPEC, market=market)


def _series(frame: pl.DataFrame, symbol: str, column: str) -> np.ndarray:
    return frame.filter(pl.col("symbol") == symbol)[column].to_numpy()


def test_beta_and_correlation_equal_numpy_on_the_trailing_window(panel):
    bars, market, features = panel
    m = np.diff(np.log(market["close"].to_numpy()))
    for symbol in ("AAA", "DDD"):
        r = np.diff(np.log(_series(bars, symbol, "close")))
        for t in (SPEC.long, 100, N_DAYS - 1):  # bar t's window: the returns ending at t
            x, y = m[t - SPEC.long:t], r[t - SPEC.long:t]
            assert _series(features, symbol, "beta_30")[t] == pytest.approx(np.polyfit(x, y, 1)[0], rel=1e-9)
            assert _series(features, symbol, "corr_30")[t] == pytest.approx(np.corrcoef(x, y)[0, 1], rel=1e-9)
        assert np.isnan(_series(features, symbol, "beta_30")[SPEC.long - 1])  # one return short of a window


def test_ranks_and_dispersion_equal_scipy_and_numpy_per_day(panel):
    bars, _, features = panel
    closes = np.stack([_series(bars, s, "close") for s in SYMBOLS])
    returns = np.diff(np.log(closes), axis=1)
    t = 150
    mom = np.log(closes[:, t] / closes[:, t - 10])
    expected = (rankdata(mom) - 1) / (len(SYMBOLS) - 1)
    got = np.array([_series(features, s, "rank_mom_10")[t] for s in SYMBOLS])
    np.testing.assert_allclose(got, expected)
    daily = returns.std(axis=0, ddof=1)  # dispersion of day i + 1
    expected_disp = daily[t - 10:t].mean()
    for s in SYMBOLS:
        assert _series(features, s, "xs_dispersion_10")[t] == pytest.approx(expected_disp, rel=1e-9)
    vol = np.sqrt((returns[:, t - 10:t] ** 2).mean(axis=1))
    got_vol_rank = np.array([_series(features, s, "rank_rvol_10")[t] for s in SYMBOLS])
    np.testing.assert_allclose(got_vol_rank, (rankdata(vol) - 1) / (len(SYMBOLS) - 1))


def test_market_inputs_come_from_the_index_alone(panel):
    _, market, features = panel
    idx = market["close"].to_numpy()
    t = 200
    r = np.diff(np.log(idx))[t - 10:t]
    for s in SYMBOLS:
        assert _series(features, s, "mkt_rvol_10")[t] == pytest.approx(np.sqrt((r**2).mean()), rel=1e-9)
        assert _series(features, s, "mkt_mom_10")[t] == pytest.approx(np.log(idx[t] / idx[t - 10]), rel=1e-9)
        assert _series(features, s, "mkt_drawdown_30")[t] == pytest.approx(np.log(idx[t] / idx[t - 29:t + 1].max()))


def test_no_feature_at_t_reads_a_later_close():
    bars, market = _panel()
    cut = datetime(2020, 1, 1) + timedelta(days=180)
    moved = bars.with_columns(pl.when(pl.col("ts") > cut).then(pl.col("close") * 1.7).otherwise(pl.col("close")))
    moved_market = market.with_columns(pl.when(pl.col("ts") > cut).then(pl.col("close") * 0.6)
                                       .otherwise(pl.col("close")))
    before = compute_features(bars, SPEC, market=market).filter(pl.col("ts") <= cut)
    after = compute_features(moved, SPEC, market=moved_market).filter(pl.col("ts") <= cut)
    assert_frame_equal(before, after)  # NaN warm-ups compare equal here, unlike DataFrame.equals


def test_the_spec_names_what_closes_cannot_give():
    left_out = left_out_features(SPEC)
    assert set(left_out) == {"volume_z_10", "close_location", "atr_10", "gap", "body", "parkinson_10",
                             "garman_klass_10", "rogers_satchell_10", "amihud_10_30"}
    assert not set(left_out) & set(feature_names(SPEC)[0])
    assert left_out_features(FeatureSpec()) == []
    assert input_lookback(SPEC) == SPEC.long + SPEC.regime_window - 1


def test_close_only_features_refuse_full_bars_missing_index_and_vix():
    bars, market = _panel()
    with pytest.raises(DataError, match="close-only bars have exactly"):
        compute_features(bars.with_columns(volume=pl.lit(1.0)), SPEC, market=market)
    with pytest.raises(ConfigError, match="features.market"):
        compute_features(bars, SPEC)
    with pytest.raises(ConfigError, match="vix"):
        compute_features(bars, SPEC, vix=market.rename({"close": "vix"}), market=market)
    without_market = CloseFeatureSpec(short=3, medium=10, long=30, market=False)
    with pytest.raises(ConfigError, match="set market=null"):
        compute_features(bars, without_market, market=market)
    names = feature_names(without_market)[0]
    assert "beta_30" not in names and not any(n.startswith("mkt_") for n in names)
    assert compute_features(bars, without_market).columns == ["ts", "symbol", "close", *names]


def test_range_and_volume_features_on_close_only_bars_are_refused_naming_them():
    bars, _ = _panel()
    with pytest.raises(ConfigError, match=r"^features: FeatureSpec computes \[.*'close_location', 'atr_10', 'gap', "
                                          r"'body'.*'amihud_10_30'\], which read more than the close") as err:
        compute_features(bars, FeatureSpec(short=3, medium=10, long=30, use_vix=False))
    assert "'log_return'" not in str(err.value) and "'volume_z_10'" in str(err.value)
    assert err.value.field == "features"
    own = CloseFeatureSpec(short=3, medium=10, long=30, market=False,
                           extra={"turnover": pl.col("volume") * pl.col("close")})
    with pytest.raises(ConfigError, match=r"^features\.extra\.turnover reads \['volume'\], which close-only bars"):
        compute_features(bars, own)
    ok = CloseFeatureSpec(short=3, medium=10, long=30, market=False, extra={"log_close": pl.col("close").log()})
    assert "log_close" in compute_features(bars, ok).columns
