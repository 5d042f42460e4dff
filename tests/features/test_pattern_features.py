"""Pattern features against hand-worked values and numpy."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from dualhrq.features import pattern

C, H, L, O = (pl.col(c) for c in ("c", "h", "l", "o"))


def evaluate(expr: pl.Expr, **columns: list[float] | np.ndarray) -> np.ndarray:
    return pl.DataFrame(columns).select(expr).to_series().cast(pl.Float64).to_numpy()


def test_momentum_is_the_log_return_over_the_horizon() -> None:
    close = np.array([100.0, 102.0, 99.0, 105.0, 110.0])
    got = evaluate(pattern.momentum(C, 2), c=close)
    np.testing.assert_allclose(got, [np.nan, np.nan, *np.log(close[2:] / close[:-2])])


def test_zscore_uses_the_trailing_window_with_ddof_1() -> None:
    x = np.random.default_rng(3).normal(size=12)
    got = evaluate(pattern.zscore(pl.col("x"), 4), x=x)
    expected = np.full(12, np.nan)
    for t in range(3, 12):
        w = x[t - 3 : t + 1]
        expected[t] = (x[t] - w.mean()) / w.std(ddof=1)
    np.testing.assert_allclose(got, expected)


def test_zscore_of_a_flat_series_is_zero_after_warm_up() -> None:
    got = evaluate(pattern.zscore(pl.col("x"), 3), x=[5.0] * 5)
    np.testing.assert_array_equal(got, [np.nan, np.nan, 0.0, 0.0, 0.0])


def test_close_location_spans_minus_one_to_one() -> None:
    bars = {"h": [12.0, 12, 12, 10], "l": [10.0, 10, 10, 10], "c": [10.0, 12, 11, 10]}
    got = evaluate(pattern.close_location(H, L, C), **bars)
    np.testing.assert_array_equal(got, [-1.0, 1.0, 0.0, 0.0])


def test_average_true_range_counts_gaps() -> None:
    # bar 1 gaps down from 11.5: true range = 11.5 - 10.2 = 1.3, not 10.5 - 10.2
    bars = {"h": [11.0, 12.0, 10.5], "l": [9.0, 10.0, 10.2], "c": [10.0, 11.5, 10.4]}
    got = evaluate(pattern.average_true_range(H, L, C, 2), **bars)
    np.testing.assert_allclose(got, [np.nan, (2.0 + 2.0) / 2 / 11.5, (2.0 + 1.3) / 2 / 10.4])


def test_gap_and_body_split_the_close_to_close_return() -> None:
    bars = {"o": [10.0, 10.3, 9.9], "c": [10.2, 10.0, 10.1]}
    gap = evaluate(pattern.gap(O, C), **bars)
    body = evaluate(pattern.body(O, C), **bars)
    np.testing.assert_allclose(gap[1:] + body[1:], np.log([10.0 / 10.2, 10.1 / 10.0]))
    np.testing.assert_allclose(body, np.log([10.2 / 10.0, 10.0 / 10.3, 10.1 / 9.9]))


def test_drawdown_from_the_trailing_peak() -> None:
    got = evaluate(pattern.drawdown(C, 3), c=[10.0, 12.0, 9.0, 13.0, 12.0])
    np.testing.assert_allclose(got, [np.nan, np.nan, math.log(9 / 12), 0.0, math.log(12 / 13)])


def test_volatility_ratio_compares_rms_returns() -> None:
    r = np.array([0.01, -0.01, 0.01, -0.01, 0.04, -0.04])
    got = evaluate(pattern.volatility_ratio(pl.col("r"), 2, 6), r=r)
    long_rms = math.sqrt(np.mean(r**2))
    assert got[-1] == pytest.approx(math.log(0.04 / long_rms))
    assert np.isnan(got[:-1]).all()
