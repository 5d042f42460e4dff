"""Almgren-Chriss (2000): closed forms against the definitions, the paper's example, optimality."""

import numpy as np
import pytest
from scipy.optimize import minimize

from dualhrq.errors import ConfigError
from dualhrq.market.almgren_chriss import AlmgrenChriss, schedule_weights

# the paper's example (section 3.3): 1e6 shares over 5 days in 5 steps, $50 stock at 30% annual vol
PAPER = dict(shares=1e6, horizon=5.0, n_steps=5, sigma=0.95, eta=2.5e-6, gamma=2.5e-7, epsilon=0.0625)


@pytest.mark.parametrize("lam", [1e-7, 1e-6, 2e-6, 1e-4])
def test_closed_forms_equal_the_definitions_on_the_optimal_path(lam):
    plan = AlmgrenChriss(**PAPER, risk_aversion=lam)
    x = plan.holdings()
    assert x[0] == pytest.approx(1e6) and x[-1] == pytest.approx(0.0, abs=1e-6)
    assert plan.expected_cost() == pytest.approx(plan.expected_cost_of(x), rel=1e-10)
    assert plan.variance() == pytest.approx(plan.variance_of(x), rel=1e-10)


def test_risk_neutral_trader_sells_in_a_straight_line():
    plan = AlmgrenChriss(**PAPER, risk_aversion=0.0)
    assert plan.holdings() == pytest.approx(np.linspace(1e6, 0, 6))
    # eta_tilde = 2.375e-6: E = gamma X^2/2 + eps X + eta_tilde X^2 / T; V = sigma^2 X^2 T (1-1/N)(1-1/2N) / 3
    assert plan.expected_cost() == pytest.approx(125_000 + 62_500 + 2.375e-6 * 1e12 / 5)
    assert plan.variance() == pytest.approx(0.95**2 * 1e12 * 5 * 0.8 * 0.9 / 3)


def test_trajectory_minimises_cost_plus_risk():
    lam = 2e-6
    plan = AlmgrenChriss(**PAPER, risk_aversion=lam)

    def objective(inner):  # holdings in millions of shares, cost in $1e6
        x = np.r_[plan.shares, inner * 1e6, 0.0]
        return (plan.expected_cost_of(x) + lam * plan.variance_of(x)) / 1e6

    start = np.linspace(1.0, 0.0, 6)[1:-1]
    best = minimize(objective, start, method="BFGS", options={"gtol": 1e-12}).x * 1e6
    assert plan.holdings()[1:-1] == pytest.approx(best, rel=1e-4)


def test_more_risk_aversion_front_loads_the_schedule():
    w_lo, w_hi = schedule_weights(10, 1e-2, 1.0, 1.0), schedule_weights(10, 10.0, 1.0, 1.0)
    assert w_lo.sum() == pytest.approx(1.0) and w_hi.sum() == pytest.approx(1.0)
    assert w_hi[0] > w_lo[0] > 0.1


def test_impossible_impact_settings_are_refused():
    with pytest.raises(ConfigError, match="eta"):
        AlmgrenChriss(shares=1.0, horizon=1.0, n_steps=1, sigma=1.0, eta=1e-7, gamma=1.0)
    with pytest.raises(ConfigError, match="n_steps"):
        AlmgrenChriss(shares=1.0, horizon=1.0, n_steps=0, sigma=1.0, eta=1.0)
