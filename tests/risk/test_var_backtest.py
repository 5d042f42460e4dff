"""Kupiec and Christoffersen tests against hand-worked likelihood ratios and scipy's chi-square tails."""

import math

import numpy as np
import pytest
from scipy import stats

from dualhrq.errors import ConfigError, DataError
from dualhrq.risk.var_backtest import backtest_var, christoffersen_independence, conditional_coverage, kupiec_pof


def hits_at(n: int, days) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[list(days)] = True
    return out


def test_kupiec_six_exceedances_in_250_days_at_99():
    # LR = -2 [x ln p + (n - x) ln(1 - p) - x ln(x / n) - (n - x) ln(1 - x / n)], x = 6, n = 250, p = 0.01
    lr = -2 * (6 * math.log(0.01) + 244 * math.log(0.99) - 6 * math.log(6 / 250) - 244 * math.log(244 / 250))
    test = kupiec_pof(hits_at(250, range(0, 250, 42)), 0.99)
    assert (test.n, test.exceedances, test.expected) == (250, 6, pytest.approx(2.5))
    assert test.statistic == pytest.approx(lr, rel=1e-12)
    # -2 (-27.6310 - 2.4523 + 22.3782 + 5.9276)
    assert test.statistic == pytest.approx(3.5554, abs=1e-4)
    assert test.pvalue == pytest.approx(stats.chi2.sf(lr, 1), rel=1e-12)
    # Jorion, "Value at Risk" (3rd ed.), table 6-2: at 99% over a year, 7 or more exceedances reject at 5%
    assert 0.05 < test.pvalue < 0.06
    seven = kupiec_pof(hits_at(250, range(0, 250, 36)), 0.99)
    assert seven.exceedances == 7 and seven.pvalue < 0.05  # one more exceedance flips the verdict


def test_kupiec_edges_without_nan():
    none = kupiec_pof(np.zeros(250, dtype=bool), 0.99)
    assert none.statistic == pytest.approx(-2 * 250 * math.log(0.99), rel=1e-12)  # only the (n - x) ln(1 - p) term
    assert none.pvalue == pytest.approx(stats.chi2.sf(-2 * 250 * math.log(0.99), 1))
    every = kupiec_pof(np.ones(250, dtype=bool), 0.99)
    assert every.statistic == pytest.approx(-2 * 250 * math.log(0.01), rel=1e-12)
    assert every.pvalue < 1e-100
    exact = kupiec_pof(hits_at(100, [50]), 0.99)  # exactly the expected count
    assert exact.statistic == pytest.approx(0.0, abs=1e-12) and exact.pvalue == pytest.approx(1.0)


def test_christoffersen_on_a_hand_made_sequence():
    seq = np.array([0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0], dtype=bool)
    # transitions 00 00 01 11 11 10 00 00 00 01 11 10: n00 = 5, n01 = 2, n10 = 2, n11 = 3
    test = christoffersen_independence(seq)
    assert (test.n00, test.n01, test.n10, test.n11) == (5, 2, 2, 3)
    pi0, pi1, pi = 2 / 7, 3 / 5, 5 / 12
    restricted = 7 * math.log(1 - pi) + 5 * math.log(pi)
    markov = 5 * math.log(1 - pi0) + 2 * math.log(pi0) + 2 * math.log(1 - pi1) + 3 * math.log(pi1)
    assert test.statistic == pytest.approx(-2 * (restricted - markov), rel=1e-12)
    assert test.pvalue == pytest.approx(stats.chi2.sf(-2 * (restricted - markov), 1), rel=1e-12)
    # pi0 = pi1 = pi: a chain that forgets its state; the statistic is exactly 0
    flat = christoffersen_independence(np.array([0, 0, 1, 1, 0, 0, 0, 1, 0, 0], dtype=bool))
    assert (flat.n00, flat.n01, flat.n10, flat.n11) == (4, 2, 2, 1)
    assert flat.statistic == pytest.approx(0.0, abs=1e-12) and flat.pvalue == pytest.approx(1.0)


def test_clustered_exceedances_reject_independence_and_spread_ones_do_not():
    clustered = hits_at(500, [*range(100, 105), *range(300, 305)])
    spread = hits_at(500, range(49, 500, 50))
    assert clustered.sum() == spread.sum() == 10
    bunched, apart = christoffersen_independence(clustered), christoffersen_independence(spread)
    assert (bunched.n11, apart.n11) == (8, 0)
    assert bunched.pvalue < 0.001
    assert apart.pvalue > 0.05
    # coverage alone cannot tell them apart: the same count, the same Kupiec p-value
    assert kupiec_pof(clustered, 0.98).pvalue == kupiec_pof(spread, 0.98).pvalue > 0.05


def test_independence_edges_without_nan():
    for seq in (np.zeros(50, dtype=bool), np.ones(50, dtype=bool), hits_at(50, [49]), hits_at(50, [0])):
        test = christoffersen_independence(seq)
        assert test.statistic == pytest.approx(0.0, abs=1e-12) and test.pvalue == pytest.approx(1.0)


def test_conditional_coverage_is_the_sum_on_two_degrees_of_freedom():
    seq = hits_at(250, [10, 11, 12, 100, 200, 201])
    cc = conditional_coverage(seq, 0.99)
    total = kupiec_pof(seq, 0.99).statistic + christoffersen_independence(seq).statistic
    assert cc.statistic == pytest.approx(total, rel=1e-12)
    assert cc.pvalue == pytest.approx(stats.chi2.sf(total, 2), rel=1e-12)
    assert cc.coverage.exceedances == 6 and cc.independence.n11 == 3


def test_backtest_var_counts_exceedances_and_skips_missing_forecasts():
    returns = np.array([0.01, -0.03, -0.02, -0.05, 0.0, -0.021, -0.019, 0.02])
    var = np.array([np.nan, np.nan, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02])
    result = backtest_var(returns, var, 0.95)
    # a loss equal to the VaR is not an exceedance; the -3% day has no forecast
    np.testing.assert_array_equal(result.exceeded, [False, False, False, True, False, True, False, False])
    assert (result.n, result.exceedances) == (6, 2)
    assert result.rate == pytest.approx(2 / 6) and result.expected == pytest.approx(0.3)
    tested = np.array([False, True, False, True, False, False])
    assert result.pof_pvalue == kupiec_pof(tested, 0.95).pvalue
    assert result.independence_pvalue == christoffersen_independence(tested).pvalue
    assert result.conditional_coverage_pvalue == conditional_coverage(tested, 0.95).pvalue


def test_bad_inputs_name_their_field():
    with pytest.raises(ConfigError, match=r"^level must be a number in \(0, 1\), got 1.5"):
        kupiec_pof(np.zeros(10, dtype=bool), 1.5)
    with pytest.raises(ConfigError, match=r"^level must be"):
        backtest_var(np.zeros(10), np.full(10, 0.01), 0)
    with pytest.raises(DataError, match=r"^returns and var_forecasts must be 1-D arrays of the same length"):
        backtest_var(np.zeros(10), np.full(9, 0.01), 0.99)
    with pytest.raises(DataError, match=r"^var_forecasts must be finite or NaN"):
        backtest_var(np.zeros(10), np.r_[np.inf, np.full(9, 0.01)], 0.99)
    with pytest.raises(DataError, match=r"^returns must be finite on every day with a VaR forecast"):
        backtest_var(np.r_[np.nan, np.zeros(9)], np.full(10, 0.01), 0.99)
    with pytest.raises(DataError, match=r"^var_forecasts has 1 non-NaN values"):
        backtest_var(np.zeros(10), np.r_[np.full(9, np.nan), 0.01], 0.99)
    with pytest.raises(DataError, match=r"^exceeded must be a 1-D boolean array"):
        christoffersen_independence(np.array([0.0, 0.5, 1.0]))
    with pytest.raises(DataError, match=r"^exceeded must be a 1-D boolean array of at least 2 days"):
        christoffersen_independence(np.array([True]))
