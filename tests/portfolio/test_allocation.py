import math

import numpy as np
import polars as pl
import pytest
from scipy.linalg import hadamard
from skfolio import RiskMeasure
from skfolio.optimization import RiskBudgeting as SkfolioRiskBudgeting

from dualhrq.data.sources import load_sp500_stocks
from dualhrq.errors import ConfigError, DataError
from dualhrq.portfolio.allocation import (
    Allocator,
    FixedWeights,
    InverseVolatility,
    RiskBudgeting,
    risk_contributions,
    trailing_covariance,
)


def _shares(w: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Variance contributions worked in the test: w * (S w) / (w' S w)."""
    return w * (s @ w) / (w @ s @ w)


def _correlated(n: int = 300, seed: int = 7) -> np.ndarray:
    cov = np.array([[4.0, 1.2, 0.5], [1.2, 2.0, -0.3], [0.5, -0.3, 1.0]]) * 1e-4
    return np.random.default_rng(seed).multivariate_normal(np.zeros(3), cov, size=n)


def test_risk_budgeting_meets_a_non_uniform_budget():
    x = _correlated()
    budget = np.array([0.5, 0.3, 0.2])
    w = RiskBudgeting(window=120, budget=(0.5, 0.3, 0.2)).weights(x)
    s = np.cov(x[-120:], rowvar=False, ddof=1)
    assert np.all(w > 0) and w.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.max(np.abs(_shares(w, s) - budget)) < 1e-6
    # skfolio alone, on the same rows, stops within its solver tolerance of the same weights
    raw = SkfolioRiskBudgeting(risk_measure=RiskMeasure.VARIANCE, risk_budget=budget).fit(x[-120:]).weights_
    assert np.max(np.abs(w - raw)) < 1e-3
    # a budget passed to the call replaces the configured one
    w2 = RiskBudgeting(window=120).weights(x, np.array([0.2, 0.3, 0.5]))
    assert np.max(np.abs(_shares(w2, s) - [0.2, 0.3, 0.5])) < 1e-6


def test_equal_risk_contribution_on_real_stocks():
    bars = load_sp500_stocks(start="2020-01-01", end="2020-12-31")
    prices = bars.pivot(on="symbol", index="ts", values="close").sort("ts").drop("ts").to_numpy()
    x = prices[1:] / prices[:-1] - 1
    w = RiskBudgeting(window=250).weights(x)
    s = np.cov(x[-250:], rowvar=False, ddof=1)
    assert x.shape[1] == 20
    assert np.max(np.abs(_shares(w, s) - 1 / 20)) < 1e-6


def test_zero_budget_leaves_the_column_out():
    x = _correlated()
    w = RiskBudgeting(window=100).weights(x, np.array([0.0, 0.5, 0.5]))
    s = np.cov(x[-100:, 1:], rowvar=False, ddof=1)
    assert w[0] == 0.0
    assert np.max(np.abs(_shares(w[1:], s) - 0.5)) < 1e-6


def test_erc_on_a_diagonal_covariance_is_inverse_volatility():
    # orthogonal, zero-mean columns: the sample covariance is exactly diagonal
    sigma = np.array([0.01, 0.02, 0.04])
    x = hadamard(8)[:, 1:4] * sigma
    s = np.cov(x, rowvar=False, ddof=1)
    assert np.allclose(s, np.diag(np.diag(s)), atol=1e-18)
    erc = RiskBudgeting(window=8).weights(x)
    ivol = InverseVolatility(window=8).weights(x)
    hand = np.array([1 / 1, 1 / 2, 1 / 4]) / (1 + 1 / 2 + 1 / 4)  # 1/sigma, normalised
    assert ivol == pytest.approx(hand, abs=1e-12)
    assert erc == pytest.approx(hand, abs=1e-9)


def test_inverse_volatility_by_hand_reads_only_the_window():
    x = np.array([[0.50, -0.30], [0.01, 0.02], [0.03, -0.02], [-0.01, 0.00]])
    # window 3: the last three rows; sample std with ddof=1
    sd_a = math.sqrt(((0.01 - 0.01) ** 2 + (0.03 - 0.01) ** 2 + (-0.01 - 0.01) ** 2) / 2)
    sd_b = math.sqrt(((0.02 - 0.0) ** 2 + (-0.02 - 0.0) ** 2 + (0.0 - 0.0) ** 2) / 2)
    expected = np.array([1 / sd_a, 1 / sd_b]) / (1 / sd_a + 1 / sd_b)
    assert InverseVolatility(window=3).weights(x) == pytest.approx(expected, abs=1e-12)
    changed = x.copy()
    changed[0] = [-0.2, 0.9]
    assert InverseVolatility(window=3).weights(changed) == pytest.approx(expected, abs=1e-12)
    # a history shorter than the window uses all of it
    assert InverseVolatility(window=50).weights(x[1:]) == pytest.approx(expected, abs=1e-12)


def test_risk_contributions_by_hand():
    s = np.array([[0.04, 0.006], [0.006, 0.01]])
    w = np.array([0.25, 0.75])
    total = 0.25**2 * 0.04 + 2 * 0.25 * 0.75 * 0.006 + 0.75**2 * 0.01
    first = 0.25 * (0.25 * 0.04 + 0.75 * 0.006) / total
    rc = risk_contributions(w, s)
    assert rc == pytest.approx([first, 1 - first], abs=1e-15)
    with pytest.raises(DataError, match="variance"):
        risk_contributions(np.array([1.0, 0.0]), np.zeros((2, 2)))


def test_fixed_weights_and_the_allocator_protocol():
    x = _correlated(10)
    fixed = FixedWeights((0.2, 0.3, 0.5))
    assert fixed.weights(x) == pytest.approx([0.2, 0.3, 0.5])
    assert np.array_equal(fixed.covariance(x), trailing_covariance(x, None))
    for allocator in (fixed, InverseVolatility(5), RiskBudgeting(5)):
        assert isinstance(allocator, Allocator)
    with pytest.raises(ConfigError, match=r"^weights must be 3 entries long"):
        FixedWeights((0.5, 0.5)).weights(x)


def test_sum_tolerance_edge():
    RiskBudgeting(budget=(0.5, 0.3, 0.2 + 0.9e-9))
    with pytest.raises(ConfigError, match=r"^budget must be a set of entries summing to 1 within 1e-09"):
        RiskBudgeting(budget=(0.5, 0.3, 0.2 + 1.1e-9))


@pytest.mark.parametrize(("make", "message"), [
    (lambda: RiskBudgeting(budget=(0.5, 0.3, 0.3)), r"^budget must be a set of entries summing to 1"),
    (lambda: RiskBudgeting(budget=(1.2, -0.2)), r"^budget must be non-negative in every entry"),
    (lambda: RiskBudgeting(budget=(0.5, float("nan"), 0.5)), r"^budget must be a non-empty sequence of finite"),
    (lambda: RiskBudgeting(window=1), r"^window must be an integer >= 2, got 1"),
    (lambda: InverseVolatility(window=0), r"^window must be an integer >= 2, got 0"),
    (lambda: FixedWeights((1.5, -0.5)), r"^weights must be non-negative in every entry"),
    (lambda: FixedWeights((0.5, 0.4)), r"^weights must be a set of entries summing to 1"),
    (lambda: RiskBudgeting(window=10, budget=(0.5, 0.5)).weights(_correlated()),
     r"^budget must be 3 entries long, one per column"),
    (lambda: RiskBudgeting(window=10).weights(_correlated(), np.array([0.7, 0.2, 0.2])),
     r"^budget must be a set of entries summing to 1"),
    (lambda: InverseVolatility(10).weights(_correlated(), np.array([0.5, 0.25, 0.25])),
     r"^budget: InverseVolatility takes no risk budget"),
])
def test_bad_configuration_names_the_field(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_bad_history():
    x = _correlated(50)
    flat = x.copy()
    flat[:, 1] = 0.0
    with pytest.raises(DataError, match=r"columns \[1\] have zero variance"):
        RiskBudgeting(window=20).weights(flat)
    with pytest.raises(DataError, match=r"columns \[1\] have zero variance"):
        InverseVolatility(window=20).weights(flat)
    offset = x.copy()
    offset[:, 1] = -offset[:, 0]  # books 0 and 1 held together carry no risk: no budgeting solution
    with pytest.raises(DataError, match="risk budgeting has no solution on a covariance of 20 rows and 3 columns"):
        RiskBudgeting(window=20).weights(offset)
    gap = x.copy()
    gap[3, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        InverseVolatility(window=20).weights(gap)
    with pytest.raises(DataError, match="at least 2"):
        RiskBudgeting(window=20).weights(x[:1])
    with pytest.raises(DataError, match="shape"):
        InverseVolatility(window=20).weights(pl.Series(x[:, 0]).to_numpy())


def test_risk_budgets_are_met_when_the_books_volatilities_differ_by_orders_of_magnitude():
    rng = np.random.default_rng(7)
    common = rng.normal(size=60)
    quiet = 1e-5 * (0.3 * common + rng.normal(size=60))  # a nearly flat book beside an options book
    loud = 2e-2 * (0.5 * common + rng.normal(size=60))
    history = np.column_stack([quiet, loud])
    budget = np.array([0.3, 0.7])
    w = RiskBudgeting(window=60).weights(history, budget)
    cov = np.cov(history, rowvar=False)
    np.testing.assert_allclose(w * (cov @ w) / (w @ cov @ w), budget, atol=1e-6)
