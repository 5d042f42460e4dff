"""Regime estimators against their formulas, worked independently with numpy."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import polars as pl
import pytest

from dualhrq.features import regime


def evaluate(expr: pl.Expr, **columns: list[float] | np.ndarray) -> np.ndarray:
    """Evaluate ``expr`` on one symbol's columns; nulls come back as NaN."""
    return pl.DataFrame(columns).select(expr).to_series().cast(pl.Float64).to_numpy()


def trailing(values: np.ndarray, window: int, reduce: Callable[[np.ndarray], float]) -> np.ndarray:
    """reduce() over each full trailing window, NaN before the first one."""
    out = np.full(len(values), np.nan)
    for t in range(window - 1, len(values)):
        out[t] = reduce(values[t - window + 1 : t + 1])
    return out


R = pl.col("r")
RETURNS = np.array([0.01, -0.02, 0.03, -0.01, 0.02, 0.0, -0.015])


def test_log_return() -> None:
    got = evaluate(regime.log_return(pl.col("c")), c=[100.0, 110.0, 99.0])
    np.testing.assert_allclose(got, [np.nan, math.log(1.1), math.log(0.9)])


def test_realized_variance_is_the_trailing_sum_of_squares() -> None:
    got = evaluate(regime.realized_variance(R, 3), r=RETURNS)
    np.testing.assert_allclose(got, trailing(RETURNS**2, 3, np.sum))


def test_bipower_variation_by_hand() -> None:
    got = evaluate(regime.bipower_variation(R, 3), r=RETURNS)
    # t=3: |r3 r2| + |r2 r1| + |r1 r0| = .0003 + .0006 + .0002
    assert got[3] == pytest.approx(math.pi / 2 * 0.0011)
    products = np.abs(RETURNS[1:] * RETURNS[:-1])
    expected = np.r_[np.nan, math.pi / 2 * trailing(products, 3, np.sum)]
    np.testing.assert_allclose(got, expected)


def test_bipower_variation_sees_through_a_jump_that_realized_variance_absorbs() -> None:
    n, sigma, jump = 20_000, 0.01, 2.0
    r = np.random.default_rng(1).normal(0, sigma, n)
    r[n // 2] += jump
    exprs = [regime.realized_variance(R, n - 1), regime.bipower_variation(R, n - 1)]
    rv, bpv = (evaluate(e, r=r)[-1] for e in exprs)
    assert bpv == pytest.approx(n * sigma**2, rel=0.05)  # continuous part only
    assert rv == pytest.approx(n * sigma**2 + jump**2, rel=0.05)
    share = evaluate(regime.jump_share(pl.lit(rv), pl.lit(bpv)), r=[0.0])[0]
    assert share == pytest.approx(jump**2 / rv, abs=0.02)


def test_jump_share_is_clipped_and_zero_without_variance() -> None:
    share = regime.jump_share(pl.col("rv"), pl.col("bpv"))
    got = evaluate(share, rv=[0.0, 1, 2, 4], bpv=[0.0, 1.5, 1, 1])
    np.testing.assert_allclose(got, [0.0, 0.0, 0.5, 0.75])


OHLC = [pl.col(c) for c in ("o", "h", "l", "c")]


def test_range_estimators_on_hand_worked_bars() -> None:
    # bar 0: opens at the low, closes at the high, ln(H/L) = 0.02
    # bar 1: opens and closes at 100, high 100e^0.01, low 100e^-0.02
    bars = {
        "o": [100.0, 100.0],
        "h": [100 * math.exp(0.02), 100 * math.exp(0.01)],
        "l": [100.0, 100 * math.exp(-0.02)],
        "c": [100 * math.exp(0.02), 100.0],
    }
    parkinson = evaluate(regime.parkinson(OHLC[1], OHLC[2]), **bars)
    np.testing.assert_allclose(parkinson, [0.02**2, 0.03**2] / np.array(4 * math.log(2)))
    gk = evaluate(regime.garman_klass(*OHLC), **bars)
    np.testing.assert_allclose(gk, [(0.5 - (2 * math.log(2) - 1)) * 0.02**2, 0.5 * 0.03**2])
    rs = evaluate(regime.rogers_satchell(*OHLC), **bars)
    np.testing.assert_allclose(rs, [0.0, 0.01**2 + 0.02**2], atol=1e-15)


def test_range_estimators_are_unbiased_for_brownian_bars() -> None:
    """Each estimator's mean over many simulated bars recovers the diffusion variance."""
    rng = np.random.default_rng(7)
    n_bars, steps, sigma = 2000, 500, 0.01
    paths = np.cumsum(rng.normal(0, sigma / math.sqrt(steps), (n_bars, steps)), axis=1)
    log_prices = np.hstack([np.zeros((n_bars, 1)), paths]) + rng.normal(0, 0.05, (n_bars, 1))
    bars = {
        "o": np.exp(log_prices[:, 0]),
        "h": np.exp(log_prices.max(axis=1)),
        "l": np.exp(log_prices.min(axis=1)),
        "c": np.exp(log_prices[:, -1]),
    }
    for estimate in (
        regime.parkinson(OHLC[1], OHLC[2]),
        regime.garman_klass(*OHLC),
        regime.rogers_satchell(*OHLC),
    ):
        # a 500-step walk misses some of the continuous range: about 6% low
        assert evaluate(estimate, **bars).mean() == pytest.approx(sigma**2, rel=0.1)


def test_amihud_is_the_mean_price_impact_per_dollar() -> None:
    close = np.array([10.0, 10.5, 10.2, 10.4, 10.1])
    volume = np.array([1e6, 2e6, 1.5e6, 1e6, 3e6])
    r = np.r_[np.nan, np.log(close[1:] / close[:-1])]
    illiquidity = regime.amihud_illiquidity(R, pl.col("c"), pl.col("v"), 2)
    got = evaluate(illiquidity, r=r, c=close, v=volume)
    np.testing.assert_allclose(got, trailing(np.abs(r) / (close * volume), 2, np.mean))


def test_zero_volume_bars_carry_the_last_traded_volume() -> None:
    got = evaluate(regime.traded_volume(pl.col("v")), v=[0.0, 5.0, 0.0, 0.0, 7.0])
    np.testing.assert_array_equal(got, [np.nan, 5.0, 5.0, 5.0, 7.0])


def test_rolling_volatility_is_root_mean_variance_clipped_at_zero() -> None:
    got = evaluate(regime.rolling_volatility(pl.col("v"), 2), v=[4.0, 0.0, -2.0, 16.0])
    np.testing.assert_allclose(got, [np.nan, math.sqrt(2.0), 0.0, math.sqrt(7.0)])
