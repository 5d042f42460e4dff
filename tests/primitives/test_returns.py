"""Sharpe ratio and maximum drawdown against hand-worked numbers."""

import math

import numpy as np
import pytest

from dualhrq.errors import ConfigError, DataError
from dualhrq.primitives.returns import max_drawdown, sharpe_ratio


def test_sharpe_ratio():
    r = np.random.default_rng(0).normal(0.0005, 0.01, 500)
    assert sharpe_ratio(r) == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(252))
    assert sharpe_ratio(r, 12) == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(12))
    assert math.isnan(sharpe_ratio(np.full(10, 0.01)))


def test_max_drawdown_hand_made():
    # equity 1.1, 0.88, 0.924, 0.8316, 1.08108: trough 0.8316 under peak 1.1.
    assert max_drawdown([0.1, -0.2, 0.05, -0.1, 0.3]) == pytest.approx(1 - 0.8316 / 1.1)
    assert max_drawdown([-0.5, 1.0]) == pytest.approx(0.5)  # measured from the starting capital
    assert max_drawdown([0.01, 0.02]) == 0.0
    with pytest.raises(DataError):
        max_drawdown([0.1, -1.5])


def test_inputs_are_checked():
    with pytest.raises(DataError):
        sharpe_ratio([0.01, np.nan, 0.02])
    with pytest.raises(ConfigError):
        sharpe_ratio([0.01, 0.02], periods_per_year=0)
