"""EWMA correlation against a hand recursion; the regime monitor on planted correlation paths."""

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from dualhrq.errors import ConfigError, DataError
from dualhrq.risk.correlation import CorrelationMonitor, ewma_correlation


def test_ewma_correlation_is_the_riskmetrics_recursion_and_point_in_time():
    r = np.array([[0.01, 0.02, -0.01], [-0.02, -0.01, 0.00], [0.015, 0.01, 0.02],
                  [0.00, -0.03, 0.01], [-0.01, 0.005, -0.02], [0.02, 0.01, 0.03]])
    lam = 0.5 ** (1 / 3.0)
    s = np.zeros((3, 3))
    for t in range(len(r)):
        s = lam * s + (1 - lam) * np.outer(r[t], r[t])
        sd = np.sqrt(np.diag(s))
        assert ewma_correlation(r, 3.0)[t] == pytest.approx(s / np.outer(sd, sd), abs=1e-12)
    changed = r.copy()
    changed[4:] *= -3.0  # later returns leave earlier estimates alone
    assert ewma_correlation(changed, 3.0)[:4] == pytest.approx(ewma_correlation(r, 3.0)[:4], abs=1e-15)
    assert np.isnan(ewma_correlation(np.array([[0.0, 0.01], [0.0, 0.02]]), 5.0)[:, 0, 1]).all()


def panel(segments, k=5, seed=0):
    """``k`` assets with equal pairwise correlation ``rho`` for each ``(rho, days)`` segment."""
    rng = np.random.default_rng(seed)
    parts = []
    for rho, n in segments:
        c = np.full((k, k), rho)
        np.fill_diagonal(c, 1.0)
        parts.append(rng.multivariate_normal(np.zeros(k), 1e-4 * c, size=n))
    r = np.vstack(parts)
    days = [datetime(2020, 1, 1) + timedelta(days=i) for i in range(len(r))]
    return pl.DataFrame({"ts": days, **{f"a{i}": r[:, i] for i in range(k)}})


def test_the_monitor_flags_a_planted_correlation_break_and_not_a_constant_correlation():
    monitor = CorrelationMonitor(fast_halflife=10, slow_halflife=120, threshold=0.35)
    calm = monitor.run(panel([(0.5, 800)]))
    assert calm.columns == ["ts", "fast", "slow", "shift"]
    assert calm["fast"][:120].is_null().all() and calm["shift"][:120].is_null().all()  # warm-up
    assert not calm["shift"][120:].any()
    assert calm["slow"][-1] == pytest.approx(0.5, abs=0.1)
    broken = monitor.run(panel([(0.1, 600), (0.8, 200)]))
    flagged = broken.with_row_index().filter(pl.col("shift"))["index"]
    assert 600 <= flagged.min() <= 620  # caught within a few weeks of the break, never before it
    at = broken.row(int(flagged.min()), named=True)
    assert at["fast"] > at["slow"] + 0.35


def test_bad_inputs_are_refused():
    with pytest.raises(ConfigError, match="fast_halflife must be below slow_halflife"):
        CorrelationMonitor(fast_halflife=50, slow_halflife=20)
    with pytest.raises(ConfigError, match="threshold must be a number in"):
        CorrelationMonitor(threshold=0.0)
    with pytest.raises(ConfigError, match="halflife must be a positive number"):
        ewma_correlation(np.zeros((5, 2)), 0.0)
    with pytest.raises(DataError, match="K >= 2"):
        ewma_correlation(np.zeros((5, 1)), 5.0)
    frame = panel([(0.5, 20)], k=2)
    with pytest.raises(DataError, match="nulls"):
        CorrelationMonitor().run(frame.with_columns(a0=pl.when(pl.col("a0") > 0).then(pl.col("a0"))))
    with pytest.raises(DataError, match="strictly increasing"):
        CorrelationMonitor().run(frame.reverse())
    with pytest.raises(DataError, match="two or more return columns"):
        CorrelationMonitor().run(frame.select("ts", "a0"))
