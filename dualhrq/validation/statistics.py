"""Performance statistics that correct for luck and for data snooping.

A backtest Sharpe ratio is one draw from a noisy estimator, and the best of
many tried strategies is biased upward. The probabilistic and deflated
Sharpe ratios (Bailey & López de Prado 2012, 2014) account for sample
length, non-normal returns and the number of trials; White's Reality Check
and Hansen's SPA test (via ``arch``) ask whether any model beats a
benchmark once the search over models is accounted for.

All functions take 1-D arrays of periodic simple returns (daily by default).
Sharpe ratios fed to PSR, DSR and MinTRL are per period, not annualised; the
annualised Sharpe ratio and the maximum drawdown themselves live in
:mod:`dualhrq.primitives.returns`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from arch.bootstrap import SPA, StationaryBootstrap, StepM, optimal_block_length
from scipy import stats

from dualhrq.config import FINITE, NON_NEGATIVE, PositiveInt, between, check_value, one_of, positive_int
from dualhrq.errors import DataError
from dualhrq.primitives.returns import checked_returns, per_period_sharpe

__all__ = [
    "CI_METHODS",
    "ConfidenceInterval",
    "TestResult",
    "bootstrap_ci",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "min_track_record_length",
    "probabilistic_sharpe_ratio",
    "psr_from_moments",
    "reality_check",
    "stationary_bootstrap_variance",
    "stepwise_superior_models",
    "studentized_spa",
    "superior_predictive_ability",
]

CI_METHODS = ("percentile", "basic", "norm", "bc", "bca")
_OPEN_UNIT = Annotated[float, between(0, 1, lo_open=True, hi_open=True)]


def probabilistic_sharpe_ratio(returns: np.ndarray, sr_benchmark: float = 0.0) -> float:
    """Probability that the true Sharpe ratio exceeds ``sr_benchmark``, from a return series.

    :func:`psr_from_moments` with the series' per-period (non-annualised)
    Sharpe ratio (std with ddof=1), length, sample skewness and sample
    *Pearson* kurtosis (normal = 3), both from biased moments as in
    ``scipy.stats.skew`` / ``scipy.stats.kurtosis(fisher=False)``.
    ``sr_benchmark`` is per period too.
    """
    r = checked_returns(returns)
    sr = per_period_sharpe(r)
    return psr_from_moments(sr, r.size, float(stats.skew(r)), float(stats.kurtosis(r, fisher=False)), sr_benchmark)


def psr_from_moments(sr: float, n: int, skewness: float, kurtosis: float, sr_benchmark: float = 0.0) -> float:
    """Bailey & López de Prado (2012), "The Sharpe Ratio Efficient Frontier", eq. for PSR.

    ``PSR = Phi((SR - SR*) sqrt(n - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2))``: the
    estimated Sharpe ratio's standard error grows with negative skewness
    ``g3`` and fat tails (Pearson kurtosis ``g4``), so a short, skewed track
    record earns less confidence than a normal one of the same Sharpe ratio.
    """
    z = (sr - sr_benchmark) * math.sqrt(n - 1) / math.sqrt(1 - skewness * sr + (kurtosis - 1) / 4 * sr**2)
    return float(stats.norm.cdf(z))


def expected_max_sharpe(n_trials: int, sr_variance: float) -> float:
    """Expected maximum Sharpe ratio of ``n_trials`` independent zero-skill trials.

    Bailey & López de Prado (2014), "The Deflated Sharpe Ratio":

    ``E[max SR] ~ sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))``,
    with ``gamma`` the Euler-Mascheroni constant and ``V`` the variance of the
    Sharpe ratios across trials; the result is in the units of ``sqrt(V)``.
    One trial has no selection bias: the result is 0.
    """
    check_value("n_trials", n_trials, PositiveInt, "pass the number of strategies tried.")
    check_value("sr_variance", sr_variance, Annotated[float, FINITE, NON_NEGATIVE])
    if n_trials == 1:
        return 0.0
    gamma = np.euler_gamma
    z = (1 - gamma) * stats.norm.ppf(1 - 1 / n_trials) + gamma * stats.norm.ppf(1 - 1 / (n_trials * math.e))
    return float(math.sqrt(sr_variance) * z)


def deflated_sharpe_ratio(returns: np.ndarray, n_trials: int, sr_variance: float) -> float:
    """PSR against the best Sharpe ratio expected by luck from ``n_trials`` trials (Bailey & López de Prado 2014).

    ``sr_variance`` is the variance, across the trials, of their *per-period*
    (non-annualised) Sharpe ratios, so that ``SR* = expected_max_sharpe(...)``
    is per period like the SR inside PSR. Divide annualised ratios by
    ``sqrt(periods_per_year)`` (variances by ``periods_per_year``) first.
    """
    return probabilistic_sharpe_ratio(returns, expected_max_sharpe(n_trials, sr_variance))


def min_track_record_length(returns: np.ndarray, sr_benchmark: float = 0.0, alpha: float = 0.05) -> float:
    """Observations needed for PSR(``sr_benchmark``) to reach ``1 - alpha`` (Bailey & López de Prado 2012).

    ``MinTRL = 1 + (1 - g3 SR + (g4 - 1) / 4 SR^2) (Phi^-1(1 - alpha) / (SR - SR*))^2``,
    same per-period SR and Pearson kurtosis as :func:`probabilistic_sharpe_ratio`,
    assuming the observed moments persist. In periods; ``inf`` if ``SR <= SR*``.
    """
    check_value("alpha", alpha, _OPEN_UNIT)
    r = checked_returns(returns)
    sr = per_period_sharpe(r)
    if not sr > sr_benchmark:
        return math.inf
    return float(1 + _sr_variance_factor(r, sr) * (stats.norm.ppf(1 - alpha) / (sr - sr_benchmark)) ** 2)


@dataclass(frozen=True)
class TestResult:
    """Outcome of a bootstrap test of superior predictive ability.

    ``statistic`` is the largest mean per-period excess return of a model over
    the benchmark (the quantity arch's SPA compares with its bootstrap);
    ``pvalue`` is the probability, under the null that no model beats the
    benchmark, of a value at least that large.
    """

    statistic: float
    pvalue: float
    block_size: int
    reps: int


def superior_predictive_ability(
    model_returns: np.ndarray,
    benchmark_returns: np.ndarray,
    *,
    reps: int = 1000,
    block_size: int | None = None,
    seed: int = 0,
) -> TestResult:
    """Hansen's (2005) test of superior predictive ability, via ``arch.bootstrap.SPA``.

    Losses are negated returns. ``model_returns`` is ``[T]`` or
    ``[T, n_models]``. The p-value is arch's ``consistent`` one: models far
    worse than the benchmark are not recentred, which makes the test less
    conservative than White's Reality Check and robust to adding poor models.
    Hansen's statistic is ``max(0, max_k dbar_k)`` and ``p = P*(T* >= T)``, so
    when no model's mean excess return is positive the p-value is 1; arch
    compares the unclipped maximum, which gives a far-inferior model about
    0.5 (less than a slightly inferior one gets). For a positive statistic
    the two agree and this returns arch's p-value.
    The stationary bootstrap (Politis & Romano 1994) resamples blocks with mean
    length ``block_size``; ``None`` takes the Politis-White (2004, corrected
    2009) optimal length of the loss differentials, averaged over models.
    If every model equals the benchmark exactly there is no evidence of
    superiority and the p-value is 1 (arch would report 0 from ties).
    """
    return _spa_test(model_returns, benchmark_returns, reps, block_size, seed, "consistent")


def reality_check(
    model_returns: np.ndarray,
    benchmark_returns: np.ndarray,
    *,
    reps: int = 1000,
    block_size: int | None = None,
    seed: int = 0,
) -> TestResult:
    """White's (2000) Reality Check for data snooping, via ``arch.bootstrap.SPA``.

    arch's ``upper`` p-value: every model's bootstrap distribution is
    recentred at its sample mean, the least favourable configuration of the
    null that White uses. Arguments as in :func:`superior_predictive_ability`.
    """
    return _spa_test(model_returns, benchmark_returns, reps, block_size, seed, "upper")


def studentized_spa(
    model_returns: np.ndarray,
    benchmark_returns: np.ndarray,
    *,
    reps: int = 1000,
    block_size: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Hansen's (2005) *studentized* SPA p-values ``{"lower", "consistent", "upper"}``, on arch's bootstrap.

    arch 8.0's ``SPA`` compares unstudentized mean loss differentials whatever
    its ``studentize`` flag says (the flag only feeds the recentring
    threshold). Hansen's statistic is ``T = max(0, max_k sqrt(n) dbar_k / w_k)``
    with ``w_k^2`` the stationary-bootstrap variance of model ``k``'s excess
    returns (:func:`stationary_bootstrap_variance`, the one arch uses for its
    recentring threshold), and the bootstrap values are
    ``max(0, max_k sqrt(n) (dbar*_k - g(dbar_k)) / w_k)`` with ``g`` the lower,
    consistent (``dbar_k`` kept only when ``sqrt(n) dbar_k / w_k >= -sqrt(2 ln ln n)``)
    or upper recentring; ``p = P*(T* >= T)``. Both sides are clipped at 0, so a
    set of models none of which beats the benchmark gets ``p = 1`` (with ``>``
    the bootstrap's mass at 0 would make p fall as the models get worse).
    The resamples are exactly the ones ``arch.bootstrap.SPA``
    draws for the same ``seed`` and block size, so with one model (or models
    whose excess returns differ by constants) and a positive statistic, the
    p-values equal arch's. Arguments as in :func:`superior_predictive_ability`.
    """
    excess, block_size = _excess_and_block(model_returns, benchmark_returns, reps, block_size)
    if not excess.any():
        return {"lower": 1.0, "consistent": 1.0, "upper": 1.0}
    n = excess.shape[0]
    omega = np.sqrt(np.maximum(stationary_bootstrap_variance(excess, block_size), np.finfo(float).tiny))
    mean = excess.mean(axis=0)
    t_stat = max(0.0, float(np.max(math.sqrt(n) * mean / omega)))
    keep = math.sqrt(n) * mean / omega >= -math.sqrt(2 * math.log(math.log(n)))
    centres = {"lower": np.maximum(mean, 0.0), "consistent": np.where(keep, mean, 0.0), "upper": mean}
    # the stationary bootstrap arch's SPA builds on the same data and seed: the same resamples
    resamples = StationaryBootstrap(block_size, excess, seed=seed).bootstrap(reps)
    boot = np.array([data[0].mean(axis=0) for data, _ in resamples])  # [reps, k]
    return {
        name: float(np.mean(np.maximum(0.0, np.max(math.sqrt(n) * (boot - c) / omega, axis=1)) >= t_stat))
        for name, c in centres.items()
    }


def stationary_bootstrap_variance(x: np.ndarray, block_size: int) -> np.ndarray:
    """Long-run variance of each column of ``x`` [T, k] implied by the stationary bootstrap.

    Politis & Romano (1994), as used by Hansen (2005) for the SPA statistic:
    ``w^2 = g(0) + 2 sum_{i=1}^{T-1} k(i) g(i)``, ``g(i)`` the sample
    autocovariance at lag ``i`` (divided by ``T``) and ``k(i) = (1 - i/T)(1 - p)^i
    + (i/T)(1 - p)^(T - i)`` with ``p = 1 / block_size``.
    """
    d = x - x.mean(axis=0)
    t = d.shape[0]
    lags = np.arange(1, t)
    q = 1.0 - 1.0 / block_size
    kappa = (1 - lags / t) * q**lags + (lags / t) * q ** (t - lags)
    autocov = np.column_stack([np.correlate(col, col, "full")[t:] for col in d.T]) / t  # lags 1..T-1
    return (d**2).sum(axis=0) / t + 2 * (kappa[:, None] * autocov).sum(axis=0)


def stepwise_superior_models(
    model_returns: np.ndarray,
    benchmark_returns: np.ndarray,
    *,
    size: float = 0.05,
    reps: int = 1000,
    block_size: int | None = None,
    seed: int = 0,
) -> list[int]:
    """Columns of ``model_returns`` [T, K] that beat the benchmark, controlling the familywise error at ``size``.

    Romano & Wolf (2005), "Stepwise Multiple Testing as Formalized Data
    Snooping", as implemented by ``arch.bootstrap.StepM`` (stationary
    bootstrap, block length as in :func:`superior_predictive_ability`).
    """
    check_value("size", size, _OPEN_UNIT, "pass the familywise error rate, e.g. 0.05.")
    excess, block_size = _excess_and_block(model_returns, benchmark_returns, reps, block_size)
    if not excess.any():
        return []
    step = StepM(-np.asarray(benchmark_returns, dtype=float), -(excess + np.asarray(benchmark_returns)[:, None]),
                 size=size, block_size=block_size, reps=reps, bootstrap="stationary", seed=seed)
    step.compute()
    return sorted(int(i) for i in step.superior_models)


@dataclass(frozen=True)
class ConfidenceInterval:
    """A bootstrap confidence interval around a statistic's sample value."""

    estimate: float
    low: float
    high: float
    level: float


def bootstrap_ci(
    returns: np.ndarray,
    statistic: Callable[[np.ndarray], float],
    *,
    level: float = 0.9,
    reps: int = 1000,
    block_size: int | None = None,
    method: str = "percentile",
    seed: int = 0,
) -> ConfidenceInterval:
    """Two-sided ``level`` confidence interval for ``statistic(returns)`` by the stationary bootstrap.

    Politis & Romano (1994) resample blocks of geometric mean length
    ``block_size`` (default: the Politis-White optimal length of ``returns``),
    which keeps the serial dependence that i.i.d. resampling would destroy;
    ``arch.bootstrap.StationaryBootstrap.conf_int`` forms the interval
    (``method``: one of :data:`CI_METHODS`, Efron's percentile by default).
    """
    r = checked_returns(returns)
    check_value("level", level, _OPEN_UNIT, "pass the confidence level, e.g. 0.9.")
    check_value("method", method, Annotated[str, one_of(CI_METHODS)])
    positive_int(reps, "reps")
    if block_size is None:
        block_size = max(1, round(float(optimal_block_length(r)["stationary"].iloc[0]))) if np.ptp(r) > 0 else 1
    positive_int(block_size, "block_size")
    bs = StationaryBootstrap(block_size, r, seed=seed)
    low, high = bs.conf_int(lambda x: np.atleast_1d(statistic(x)), reps=reps, method=method, size=level)[:, 0]
    return ConfidenceInterval(estimate=float(statistic(r)), low=float(low), high=float(high), level=level)


def _spa_test(
    model_returns: np.ndarray,
    benchmark_returns: np.ndarray,
    reps: int,
    block_size: int | None,
    seed: int,
    pvalue: Literal["consistent", "upper"],
) -> TestResult:
    excess, block_size = _excess_and_block(model_returns, benchmark_returns, reps, block_size)
    statistic = float(excess.mean(axis=0).max())
    if not excess.any() or (pvalue == "consistent" and statistic <= 0):
        return TestResult(statistic=statistic, pvalue=1.0, block_size=block_size, reps=reps)
    bench = np.asarray(benchmark_returns, dtype=float)
    spa = SPA(-bench, -(excess + bench[:, None]), block_size=block_size, reps=reps, bootstrap="stationary",
              seed=seed)
    spa.compute()
    return TestResult(statistic, float(spa.pvalues[pvalue]), block_size, reps)


def _excess_and_block(model_returns: np.ndarray, benchmark_returns: np.ndarray, reps: int,
                      block_size: int | None) -> tuple[np.ndarray, int]:
    """Checked ``[T, K]`` model-minus-benchmark returns (= benchmark loss - model loss) and the block length.

    ``None`` takes the Politis-White (2004, corrected 2009) optimal stationary
    block length of the excess returns, averaged over the models that vary.
    """
    bench = checked_returns(benchmark_returns, "benchmark_returns")
    models = np.asarray(model_returns, dtype=float)
    models = models[:, None] if models.ndim == 1 else models
    if models.ndim != 2 or models.shape[0] != bench.size or not np.isfinite(models).all():
        raise DataError(
            f"model_returns must be finite, shaped [T] or [T, n_models] with T={bench.size} "
            f"like benchmark_returns, got shape {np.shape(model_returns)}."
        )
    positive_int(reps, "reps")
    excess = models - bench[:, None]
    if block_size is None:
        varying = excess[:, np.ptp(excess, axis=0) > 0]
        block_size = round(float(optimal_block_length(varying)["stationary"].mean())) if varying.size else 1
        return excess, max(1, block_size)
    check_value("block_size", block_size, PositiveInt | None)
    return excess, block_size


def _sr_variance_factor(r: np.ndarray, sr: float) -> float:
    """``1 - g3 SR + (g4 - 1)/4 SR^2``: the non-normal variance of the SR estimator, times ``n - 1``."""
    return float(1 - stats.skew(r) * sr + (stats.kurtosis(r, fisher=False) - 1) / 4 * sr**2)
