"""Backtests of VaR forecasts: do the exceedances come as often as promised, and independently of each other?

An exceedance is a day whose loss ``-r_t`` is greater than that day's VaR
forecast. At a correct ``level`` they are independent Bernoulli draws with
probability ``p = 1 - level``; Kupiec (1995, "Techniques for verifying the
accuracy of risk measurement models") tests the rate, Christoffersen (1998,
"Evaluating interval forecasts") tests the independence (exceedances that bunch up, as under a VaR blind
to volatility clustering, fail it) and both together. The likelihoods use
``xlogy`` so that no exceedance, only exceedances, or an empty transition row
give finite statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np
from scipy import stats
from scipy.special import xlogy

from dualhrq.config import between, check_value
from dualhrq.errors import DataError

__all__ = ["ConditionalCoverageTest", "CoverageTest", "IndependenceTest", "VaRBacktest", "backtest_var",
           "christoffersen_independence", "conditional_coverage", "kupiec_pof"]

Level = Annotated[float, between(0, 1, lo_open=True, hi_open=True)]


@dataclass(frozen=True)
class CoverageTest:
    """Kupiec's proportion-of-failures test: ``exceedances`` in ``n`` days against ``expected = n (1 - level)``."""

    statistic: float
    pvalue: float
    n: int
    exceedances: int
    expected: float


@dataclass(frozen=True)
class IndependenceTest:
    """Christoffersen's independence test; ``n_ij`` counts days in state ``j`` after a day in state ``i``
    (1 = exceedance)."""

    statistic: float
    pvalue: float
    n00: int
    n01: int
    n10: int
    n11: int


@dataclass(frozen=True)
class ConditionalCoverageTest:
    """Christoffersen's conditional coverage: ``statistic = coverage.statistic + independence.statistic``."""

    statistic: float
    pvalue: float
    coverage: CoverageTest
    independence: IndependenceTest


def kupiec_pof(exceeded: np.ndarray, level: float) -> CoverageTest:
    """Kupiec (1995) proportion-of-failures likelihood ratio, chi-square(1) under a correct ``level``.

    ``LR = -2 [x ln p + (n - x) ln(1 - p) - x ln(x/n) - (n - x) ln(1 - x/n)]``
    with ``x`` exceedances in ``n`` days and ``p = 1 - level``.
    """
    check_value("level", level, Level)
    hits = _checked_hits(exceeded, 1)
    n, x, p = hits.size, int(hits.sum()), 1.0 - level
    rate = x / n
    statistic = -2.0 * (xlogy(x, p) + xlogy(n - x, 1 - p) - xlogy(x, rate) - xlogy(n - x, 1 - rate))
    statistic = max(float(statistic), 0.0)  # zero up to rounding when x = n p
    return CoverageTest(statistic, float(stats.chi2.sf(statistic, 1)), n, x, n * p)


def christoffersen_independence(exceeded: np.ndarray) -> IndependenceTest:
    """Christoffersen (1998) likelihood ratio of a first-order Markov chain against independence, chi-square(1).

    With ``pi_0 = n01 / (n00 + n01)``, ``pi_1 = n11 / (n10 + n11)`` and
    ``pi = (n01 + n11) / (n - 1)`` from the ``n - 1`` transitions,
    ``LR = -2 [ln L(pi) - ln L(pi_0, pi_1)]``.
    """
    hits = _checked_hits(exceeded, 2).astype(int)
    counts = np.zeros((2, 2), dtype=int)
    np.add.at(counts, (hits[:-1], hits[1:]), 1)
    (n00, n01), (n10, n11) = counts
    pi0, pi1 = _ratio(n01, n00 + n01), _ratio(n11, n10 + n11)
    pi = (n01 + n11) / counts.sum()
    restricted = xlogy(n00 + n10, 1 - pi) + xlogy(n01 + n11, pi)
    markov = xlogy(n00, 1 - pi0) + xlogy(n01, pi0) + xlogy(n10, 1 - pi1) + xlogy(n11, pi1)
    statistic = max(float(-2.0 * (restricted - markov)), 0.0)
    return IndependenceTest(statistic, float(stats.chi2.sf(statistic, 1)), int(n00), int(n01), int(n10), int(n11))


def conditional_coverage(exceeded: np.ndarray, level: float) -> ConditionalCoverageTest:
    """Christoffersen (1998) conditional coverage, ``LR_pof + LR_ind``, chi-square(2).

    The sum of Kupiec's statistic on all ``n`` days and the independence one on
    the ``n - 1`` transitions, as it is usually computed; Christoffersen's exact
    decomposition drops the first day from the coverage part, which moves the
    statistic by one observation's worth.
    """
    coverage, independence = kupiec_pof(exceeded, level), christoffersen_independence(exceeded)
    statistic = coverage.statistic + independence.statistic
    return ConditionalCoverageTest(statistic, float(stats.chi2.sf(statistic, 2)), coverage, independence)


@dataclass(frozen=True, eq=False)
class VaRBacktest:
    """Exceedances of a VaR forecast series and the three tests on them.

    ``n`` counts the days with a forecast, ``rate = exceedances / n`` is to be
    compared with ``1 - level``; ``exceeded`` is aligned with the input (False
    on days without a forecast).
    """

    level: float
    n: int
    exceedances: int
    expected: float
    rate: float
    pof_pvalue: float
    independence_pvalue: float
    conditional_coverage_pvalue: float
    exceeded: np.ndarray


def backtest_var(returns: np.ndarray, var_forecasts: np.ndarray, level: float) -> VaRBacktest:
    """Test daily VaR forecasts (positive loss fractions, as :func:`dualhrq.risk.var.rolling_var` gives them)
    against the ``returns`` of the same days. Days whose forecast is NaN (a rolling window's warm-up) are
    skipped; the independence test then reads the remaining days as consecutive."""
    check_value("level", level, Level)
    r = np.asarray(returns, dtype=float)
    v = np.asarray(var_forecasts, dtype=float)
    if r.ndim != 1 or v.shape != r.shape:
        raise DataError(f"returns and var_forecasts must be 1-D arrays of the same length, got shapes {r.shape} "
                        f"and {v.shape}. Fix: pass one forecast per day, NaN where there is none.")
    tested = ~np.isnan(v)
    if np.isinf(v).any():
        raise DataError("var_forecasts must be finite or NaN (no forecast), got inf. Fix: check the VaR model.")
    if not np.isfinite(r[tested]).all():
        raise DataError("returns must be finite on every day with a VaR forecast, got NaN/inf. "
                        "Fix: drop those days from both series or set their forecast to NaN.")
    if tested.sum() < 2:
        raise DataError(f"var_forecasts has {int(tested.sum())} non-NaN values; a backtest needs at least 2. "
                        "Fix: pass a longer forecast series.")
    exceeded = np.zeros(r.size, dtype=bool)
    exceeded[tested] = -r[tested] > v[tested]
    cc = conditional_coverage(exceeded[tested], level)
    pof = cc.coverage
    return VaRBacktest(level, pof.n, pof.exceedances, pof.expected, pof.exceedances / pof.n, pof.pvalue,
                       cc.independence.pvalue, cc.pvalue, exceeded)


def _checked_hits(exceeded: np.ndarray, min_len: int) -> np.ndarray:
    hits = np.asarray(exceeded)
    if hits.ndim != 1 or hits.size < min_len or not np.isin(hits, (0, 1)).all():
        got = f"shape {hits.shape}" if hits.ndim != 1 or hits.size < min_len else "values other than True/False"
        raise DataError(f"exceeded must be a 1-D boolean array of at least {min_len} days (True = loss above "
                        f"VaR), got {got}. Fix: pass VaRBacktest.exceeded or -returns > var.")
    return hits.astype(bool)


def _ratio(part: int, whole: int) -> float:
    """``part / whole``, 0 for an empty row (whose likelihood terms are all zero then)."""
    return part / whole if whole else 0.0
