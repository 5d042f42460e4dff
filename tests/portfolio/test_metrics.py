import math

import numpy as np
import pytest

from dualhrq.portfolio.metrics import book_metrics, hit_rate, sortino_ratio


def test_sortino_and_hit_rate_by_hand():
    r = np.array([0.02, -0.01, 0.0, 0.03, -0.02])
    downside = math.sqrt((0.01**2 + 0.02**2) / 5)
    assert sortino_ratio(r, 252) == pytest.approx(r.mean() / downside * math.sqrt(252))
    assert hit_rate(r) == pytest.approx(2 / 4)
    m = book_metrics(r, turnover=0.5)
    assert m["max_drawdown"] == pytest.approx(1 - (1.02 * 0.99 * 1.03 * 0.98) / (1.02 * 0.99 * 1.03))
    assert m["total_return"] == pytest.approx(1.02 * 0.99 * 1.03 * 0.98 - 1)
    assert math.isnan(sortino_ratio(np.array([0.01, 0.02])))
