"""build_samples against a brute-force enumeration of the sampling rules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from dualhrq.data.samples import SampleSet, build_samples
from dualhrq.data.sources import load_bundled, load_vix
from dualhrq.errors import ConfigError, DataError
from dualhrq.features.engine import FeatureSpec, compute_features, feature_names

NAN = float("nan")
LENGTHS = {"AAA": 14, "BBB": 11}
# Unusable rows: NaN warm-up in f0, and for AAA a null in the regime column mid-series.
UNUSABLE = {"AAA": {0, 1, 7}, "BBB": {0, 1, 2}}
REGIME_GAP = ("AAA", 7)


@pytest.fixture
def frame() -> pl.DataFrame:
    rng = np.random.default_rng(5)
    parts = []
    for symbol, n in LENGTHS.items():
        f0 = rng.normal(size=n)
        f0[[i for i in UNUSABLE[symbol] if (symbol, i) != REGIME_GAP]] = NAN
        r0 = [None if (symbol, i) == REGIME_GAP else float(i) for i in range(n)]
        # BBB starts a day later, so decision times interleave across symbols
        start = datetime(2020, 1, 1) + timedelta(days=symbol == "BBB")
        parts.append(
            pl.DataFrame(
                {
                    "ts": [start + timedelta(days=i) for i in range(n)],
                    "symbol": symbol,
                    "close": 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n))),
                    "f0": f0,
                    "r0": r0,
                }
            )
        )
    return pl.concat(parts)


def expected_samples(seq_len: int, horizon: int) -> list[tuple[str, int]]:
    """(symbol, position in symbol) of every eligible decision bar, by the rules in words."""
    out = []
    for symbol, n in LENGTHS.items():
        for t in range(n):
            window = range(t - seq_len + 1, t + 1)
            if window.start >= 0 and not UNUSABLE[symbol] & set(window) and t + horizon < n:
                out.append((symbol, t))
    return out


def build(frame: pl.DataFrame, **kwargs: int) -> SampleSet:
    kwargs.setdefault("seq_len", 3)
    return build_samples(frame, ["f0", "r0"], ["r0"], **kwargs)


@pytest.mark.parametrize("seq_len, horizon", [(1, 1), (3, 1), (3, 2), (5, 3)])
def test_samples_follow_the_rules(frame: pl.DataFrame, seq_len: int, horizon: int) -> None:
    s = build(frame, seq_len=seq_len, horizon=horizon)
    offset = {"AAA": 0, "BBB": LENGTHS["AAA"]}
    expected = {offset[sym] + t for sym, t in expected_samples(seq_len, horizon)}
    assert set(s.end_row.tolist()) == expected and len(s) == len(expected)

    symbol = frame["symbol"].to_numpy()
    ts, close = frame["ts"].to_numpy(), frame["close"].to_numpy()
    f0 = frame["f0"].to_numpy().astype(np.float32)
    for i in range(len(s)):
        rows = np.arange(s.end_row[i] - seq_len + 1, s.end_row[i] + 1)
        end, label = s.end_row[i], s.end_row[i] + horizon
        assert (symbol[rows] == s.symbols[s.symbol_id[i]]).all()  # never crosses symbols
        assert symbol[label] == symbol[end]
        assert np.isfinite(s.window(i)).all() and s.window(i).shape == (seq_len, 2)
        np.testing.assert_array_equal(s.window(i)[:, 0], f0[rows])
        assert s.t[i] == ts[end]
        assert s.t1[i] == ts[end] + np.timedelta64(horizon, "D")  # h daily bars later
        assert s.target[i] == pytest.approx(np.log(close[label] / close[end]), rel=1e-12)
        assert s.next_return[i] == pytest.approx(close[end + 1] / close[end] - 1, rel=1e-12)


def test_samples_are_time_major(frame: pl.DataFrame) -> None:
    s = build(frame)
    keys = list(zip(s.t.tolist(), s.symbol_id.tolist(), strict=True))
    assert keys == sorted(keys)
    assert s.symbols == ["AAA", "BBB"] and set(s.symbol_id.tolist()) == {0, 1}


def test_arrays_have_the_documented_types(frame: pl.DataFrame) -> None:
    s = build(frame)
    assert s.features.dtype == s.regime.dtype == np.float32
    assert s.features.shape == (frame.height, 2) and s.regime.shape == (frame.height, 1)
    assert s.end_row.dtype == s.symbol_id.dtype == np.int64
    assert s.t.dtype == s.t1.dtype == np.dtype("datetime64[us]")
    assert s.target.dtype == s.next_return.dtype == np.float64
    assert (s.feature_names, s.regime_names, s.seq_len, s.horizon) == (["f0", "r0"], ["r0"], 3, 1)


def test_stride_keeps_every_kth_decision_time_of_the_panel_for_every_symbol(frame: pl.DataFrame) -> None:
    # seq_len 3: AAA decides at its bars 4-6 and 10-12 (days 4-6, 10-12 after Jan 1), BBB at its bars 5-9 (days
    # 6-10); the panel's decision days 4..12, every second one from the first: 4, 6, 8, 10, 12
    strided = build(frame, stride=2)
    days = (strided.t - np.datetime64("2020-01-01")).astype("timedelta64[D]").astype(int)
    assert sorted(days[strided.symbol_id == 0]) == [4, 6, 10, 12]
    assert sorted(days[strided.symbol_id == 1]) == [6, 8, 10]  # BBB's bars 5, 7, 9: on the same grid as AAA


def test_largest_seq_len_in_the_error_is_the_largest_that_works(frame: pl.DataFrame) -> None:
    # longest usable run with a label: BBB rows 3..9 (row 10 is last, so unlabelled)
    with pytest.raises(DataError, match=r"data.seq_len=8 is longer .* that works is 7\. Fix"):
        build(frame, seq_len=8)
    assert len(build(frame, seq_len=7)) == 1


def test_no_usable_rows_is_a_data_error(frame: pl.DataFrame) -> None:
    with pytest.raises(DataError, match=r"no usable labelled rows.*data.horizon=1"):
        build(frame.with_columns(f0=pl.lit(NAN)))


@pytest.mark.parametrize("field", ["seq_len", "horizon", "stride"])
def test_non_positive_settings_are_config_errors(frame: pl.DataFrame, field: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{field} must be a positive integer, got 0\.") as err:
        build(frame, **{field: 0})
    assert err.value.field == field


def test_missing_columns_are_named(frame: pl.DataFrame) -> None:
    with pytest.raises(DataError, match=r"feature frame: missing columns \['close', 'f9'\]"):
        build_samples(frame.drop("close"), ["f0", "f9"], ["r0"], seq_len=2)


@pytest.mark.parametrize(
    "reorder",
    [lambda f: f.sort("ts", "symbol"), lambda f: f.reverse()],
    ids=["time-major", "reversed"],
)
def test_unsorted_frames_are_rejected(
    frame: pl.DataFrame, reorder: Callable[[pl.DataFrame], pl.DataFrame]
) -> None:
    with pytest.raises(DataError, match=r"not sorted by \(symbol, ts\).*Fix"):
        build(reorder(frame))


def test_bundled_data_gives_one_sample_per_labelled_day_after_warm_up() -> None:
    spec = FeatureSpec()
    inputs, regime_cols = feature_names(spec)
    frame = compute_features(load_bundled(), spec, vix=load_vix())
    s = build_samples(frame, inputs, regime_cols, seq_len=32)
    # per symbol: 5031 days - 60 warm-up (long window) - 119 more for the regime z-scores (120 levels)
    # - 31 more for the window - 1 unlabelled
    assert len(s) == 2 * (5031 - 60 - 119 - 31 - 1)
    assert s.t[0] == s.t[1]


@pytest.mark.parametrize("horizon", [1, 3])
def test_unlabelled_samples_reach_the_last_bar_of_each_symbol(frame: pl.DataFrame, horizon: int) -> None:
    s = build(frame, seq_len=3, horizon=horizon, labelled=False)
    offset = {"AAA": 0, "BBB": LENGTHS["AAA"]}
    expected = {offset[sym] + t for sym, t in expected_samples(3, 0)}  # horizon 0: no label needed
    assert set(s.end_row.tolist()) == expected
    last = {offset[sym] + n - 1 for sym, n in LENGTHS.items()}
    assert last <= expected
    labelled = build(frame, seq_len=3, horizon=horizon)
    for i, end in enumerate(s.end_row):
        symbol_end = offset["AAA"] + LENGTHS["AAA"] - 1 if end < LENGTHS["AAA"] else len(frame) - 1
        has_label = end + horizon <= symbol_end
        assert np.isnat(s.t1[i]) == (not has_label) and np.isnan(s.target[i]) == (not has_label)
        assert np.isnan(s.next_return[i]) == (end + 1 > symbol_end)
    # where both have it, the label is the labelled samples' own
    common = np.isin(s.end_row, labelled.end_row)
    np.testing.assert_array_equal(s.target[common], labelled.target)
    np.testing.assert_array_equal(s.t1[common], labelled.t1)
