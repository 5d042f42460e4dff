"""Sharpe-ratio statistics and SPA / Reality Check against hand-worked numbers, scipy and arch."""

import dataclasses
import math

import numpy as np
import pytest
from arch.bootstrap import SPA, optimal_block_length
from scipy import stats

from dualhrq.errors import ConfigError, DataError
from dualhrq.validation import statistics as st


def _moment_series(sr=0.1, n=96):
    """n returns with per-period SR (ddof=1) exactly ``sr``, skewness 0 and Pearson kurtosis 3.

    A third of the centred values sit at +-x and the rest at 0: m4 / m2^2 = 1 / (1/3) = 3.
    """
    x = np.r_[np.full(n // 6, 1.0), np.full(n // 6, -1.0), np.zeros(n - n // 3)] * 0.01
    return x + sr * x.std(ddof=1)


def _psr_by_hand(r, sr_star):
    n, m = r.size, r.mean()
    c = r - m
    m2, m3, m4 = (np.mean(c**p) for p in (2, 3, 4))
    sr = m / math.sqrt(m2 * n / (n - 1))
    skew, kurt = m3 / m2**1.5, m4 / m2**2
    z = (sr - sr_star) * math.sqrt(n - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    return stats.norm.cdf(z)


def test_sharpe_ratio():
    r = np.random.default_rng(0).normal(0.0005, 0.01, 500)
    assert st.sharpe_ratio(r) == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(252))
    assert st.sharpe_ratio(r, 12) == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(12))
    assert math.isnan(st.sharpe_ratio(np.full(10, 0.01)))


def test_max_drawdown_hand_made():
    # equity 1.1, 0.88, 0.924, 0.8316, 1.08108: trough 0.8316 under peak 1.1.
    assert st.max_drawdown([0.1, -0.2, 0.05, -0.1, 0.3]) == pytest.approx(1 - 0.8316 / 1.1)
    assert st.max_drawdown([-0.5, 1.0]) == pytest.approx(0.5)  # measured from the starting capital
    assert st.max_drawdown([0.01, 0.02]) == 0.0
    with pytest.raises(DataError):
        st.max_drawdown([0.1, -1.5])


def test_psr_hand_worked():
    r = _moment_series()
    assert stats.skew(r) == pytest.approx(0.0, abs=1e-12)
    assert stats.kurtosis(r, fisher=False) == pytest.approx(3.0)
    # z = 0.1 sqrt(95) / sqrt(1 + (3 - 1) / 4 * 0.01) = 0.974679 / 1.002497 = 0.972252; Phi(z) = 0.834537
    assert st.probabilistic_sharpe_ratio(r) == pytest.approx(0.834537, abs=1e-6)


def test_psr_matches_direct_computation_on_simulated_returns():
    rng = np.random.default_rng(1)
    for i in range(30):
        n = int(rng.integers(30, 2000))
        r = rng.standard_t(int(rng.integers(3, 30)), n) * 0.01 + rng.normal(0, 0.002)
        if i % 2:
            r = np.expm1(r * 3)  # skewed
        sr_star = float(rng.normal(0, 0.05))
        expected = _psr_by_hand(r, sr_star)
        assert st.probabilistic_sharpe_ratio(r, sr_star) == pytest.approx(expected, rel=1e-10)


def test_min_track_record_length():
    # 1 + (1 + (3 - 1) / 4 * 0.01) * (1.644854 / 0.1)^2 = 1 + 1.005 * 270.5544 = 272.907
    assert st.min_track_record_length(_moment_series()) == pytest.approx(272.907, abs=1e-3)
    rng = np.random.default_rng(2)
    for _ in range(20):
        r = np.expm1(rng.standard_t(5, 300) * 0.01 + 0.001)
        sr = r.mean() / r.std(ddof=1)
        sr_star, alpha = sr - rng.uniform(0.01, 0.1), rng.uniform(0.01, 0.2)
        n_star = st.min_track_record_length(r, sr_star, alpha)
        # At n = MinTRL the PSR, with the observed moments, reaches exactly 1 - alpha.
        var = 1 - stats.skew(r) * sr + (stats.kurtosis(r, fisher=False) - 1) / 4 * sr**2
        z = (sr - sr_star) * math.sqrt(n_star - 1) / math.sqrt(var)
        assert stats.norm.cdf(z) == pytest.approx(1 - alpha)
    assert st.min_track_record_length(-_moment_series()) == math.inf


def test_expected_max_sharpe_against_monte_carlo():
    rng = np.random.default_rng(3)
    for n_trials, variance in [(10, 1.0), (100, 0.04), (1000, 2.5e-5)]:
        simulated = (rng.standard_normal((2000, n_trials)) * math.sqrt(variance)).max(axis=1).mean()
        assert st.expected_max_sharpe(n_trials, variance) == pytest.approx(simulated, rel=0.04)
    assert st.expected_max_sharpe(1, 1.0) == 0.0
    with pytest.raises(ConfigError):
        st.expected_max_sharpe(0, 1.0)


def test_deflated_sharpe_is_psr_against_expected_max():
    r = np.random.default_rng(4).normal(0.001, 0.01, 750)
    for n_trials, variance in [(1, 0.01), (20, 0.001), (500, 0.0004)]:
        expected = st.probabilistic_sharpe_ratio(r, st.expected_max_sharpe(n_trials, variance))
        assert st.deflated_sharpe_ratio(r, n_trials, variance) == expected
    assert st.deflated_sharpe_ratio(r, 1, 0.01) == st.probabilistic_sharpe_ratio(r)
    assert st.deflated_sharpe_ratio(r, 100, 0.001) < st.probabilistic_sharpe_ratio(r)


def _market(seed=5, t=500):
    rng = np.random.default_rng(seed)
    bench = rng.normal(0.0002, 0.01, t)
    models = np.column_stack([bench + rng.normal(0, 0.004, t) + d for d in (-0.0005, 0.0, 0.0003)])
    return bench, models


@pytest.mark.parametrize(
    ("test", "key"), [(st.superior_predictive_ability, "consistent"), (st.reality_check, "upper")]
)
def test_pvalues_equal_arch(test, key):
    bench, models = _market()
    excess = models - bench[:, None]
    for block_size in (7, None):
        result = test(models, bench, reps=500, block_size=block_size, seed=11)
        expected_block = block_size or max(1, round(optimal_block_length(excess)["stationary"].mean()))
        spa = SPA(-bench, -models, block_size=expected_block, reps=500, bootstrap="stationary", seed=11)
        spa.compute()
        assert result.pvalue == spa.pvalues[key]
        assert result.block_size == expected_block and result.reps == 500
        assert result.statistic == pytest.approx(excess.mean(axis=0).max())


@pytest.mark.parametrize("test", [st.superior_predictive_ability, st.reality_check])
def test_power_and_size(test):
    rng = np.random.default_rng(6)
    bench = rng.normal(0.0, 0.01, 1000)
    better = bench + rng.normal(0.002, 0.005, 1000)
    worse = bench + rng.normal(-0.002, 0.005, 1000)
    assert test(better, bench, reps=300).pvalue < 0.01
    assert test(worse, bench, reps=300).pvalue > 0.5
    assert test(bench.copy(), bench, reps=300).pvalue == 1.0


def test_result_is_frozen_and_inputs_checked():
    bench, models = _market()
    result = st.reality_check(models, bench, reps=50)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.pvalue = 0.0
    with pytest.raises(DataError):
        st.superior_predictive_ability(models[:-1], bench)
    with pytest.raises(ConfigError):
        st.superior_predictive_ability(models, bench, reps=0)
    with pytest.raises(DataError):
        st.sharpe_ratio([0.01, np.nan, 0.02])
