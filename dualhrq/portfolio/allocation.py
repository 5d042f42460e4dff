"""Allocation across return streams (books or assets): fixed weights, inverse volatility, risk budgeting.

Every allocator answers ``weights(history, budget)``: long-only weights
summing to 1 for the ``K`` columns of ``history`` (``T x K`` past periodic
returns, oldest first), decided from nothing but ``history``. The risk-based
ones read the sample covariance (ddof=1) of its last ``window`` rows, or of
all of it while it is shorter; :meth:`covariance` is that matrix, so a caller
can report the risk contributions (:func:`risk_contributions`) the allocator
aimed at.

Risk budgeting (Roncalli, "Introduction to Risk Parity and Budgeting", 2013)
finds the weights whose contributions ``w_i (S w)_i / w'Sw`` to the portfolio
variance equal the budget ``b``; a uniform budget gives equal risk
contribution (Maillard, Roncalli and Teiletche 2010).

The solve is skfolio's ``RiskBudgeting`` (variance risk measure) rather than
riskfolio-lib's ``rp_optimization``, which poses the same log-barrier problem
through cvxpy. skfolio is a maintained scikit-learn estimator (``fit`` on
returns, ``weights_``) and already a dependency of the project, so a second
optimisation stack would add nothing but weight.

skfolio's interior-point solver stops near 1e-5 of the budget, so its answer
is polished by Newton steps on the convex formulation of Spinu ("An
algorithm for computing risk parity weights", 2013),
``min x'Sx / 2 - b' log x`` over ``x > 0``, whose minimiser rescaled to sum 1
has contributions exactly ``b``; the polish stops at 1e-12.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Protocol, runtime_checkable

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from skfolio import RiskMeasure
from skfolio.exceptions import SkfolioError
from skfolio.moments import EmpiricalCovariance
from skfolio.optimization import RiskBudgeting as SkfolioRiskBudgeting
from skfolio.prior import EmpiricalPrior

from dualhrq.config import at_least, check_fields, invalid
from dualhrq.errors import ConfigError, DataError

__all__ = [
    "Allocator",
    "FixedWeights",
    "InverseVolatility",
    "RiskBudgeting",
    "check_simplex",
    "risk_contributions",
    "trailing_covariance",
]

SUM_TOLERANCE = 1e-9
_POLISH_TOLERANCE = 1e-12
_ACCEPT_TOLERANCE = 1e-8  # where rounding stops the polish short of _POLISH_TOLERANCE, still 100x inside 1e-6
_POLISH_STEPS = 50


@runtime_checkable
class Allocator(Protocol):
    """What the integrator needs of an allocation method."""

    def weights(self, history: np.ndarray, budget: np.ndarray | None = None) -> np.ndarray:
        """Long-only weights summing to 1, one per column of ``history``."""
        ...

    def covariance(self, history: np.ndarray) -> np.ndarray:
        """The covariance matrix :meth:`weights` reads from ``history``."""
        ...


def check_simplex(values: Sequence[float] | np.ndarray, field: str, k: int | None = None) -> np.ndarray:
    """``values`` as a float array if they are ``k`` finite, non-negative numbers summing to 1 (within
    :data:`SUM_TOLERANCE`), else a ``ConfigError`` naming ``field``."""
    try:
        v = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise invalid(field, values, "a sequence of numbers") from None
    if v.ndim != 1 or v.size == 0 or not np.isfinite(v).all():
        raise invalid(field, values, "a non-empty sequence of finite numbers")
    if k is not None and v.size != k:
        raise invalid(field, v.tolist(), f"{k} entries long, one per column", "give one entry per book or asset.")
    if (v < 0).any():
        raise invalid(field, v.tolist(), "non-negative in every entry (long-only)")
    if abs(v.sum() - 1.0) > SUM_TOLERANCE:
        raise invalid(field, v.tolist(), f"a set of entries summing to 1 within {SUM_TOLERANCE:g} (they sum to "
                      f"{float(v.sum())!r})", "divide them by their sum.")
    return v


def trailing_covariance(history: np.ndarray, window: int | None) -> np.ndarray:
    """Sample covariance (ddof=1) of the last ``window`` rows of ``history`` (all rows when None or when
    there are fewer)."""
    x = _checked_history(history)
    rows = x if window is None else x[-window:]
    return np.atleast_2d(np.cov(rows, rowvar=False, ddof=1))


def risk_contributions(weights: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """Each weight's share of the portfolio variance, ``w_i (S w)_i / w'Sw``; the shares sum to 1."""
    w = np.asarray(weights, dtype=float)
    s = np.asarray(covariance, dtype=float)
    if w.ndim != 1 or s.shape != (w.size, w.size):
        raise DataError(f"covariance has shape {s.shape}; weights of length {w.size} need ({w.size}, {w.size}).")
    marginal = s @ w
    variance = float(w @ marginal)
    if not variance > 0:
        raise DataError(f"the portfolio variance w'Sw is {variance!r}; risk contributions need it positive.")
    return w * marginal / variance


class FixedWeights:
    """The same weights every time (``weights``: one per column, non-negative, summing to 1).

    Its :meth:`covariance`, read only to report risk contributions, is that of the whole history.
    """

    def __init__(self, weights: Sequence[float]) -> None:
        self.target = tuple(float(v) for v in check_simplex(weights, "weights"))

    def __repr__(self) -> str:
        return f"FixedWeights(weights={self.target})"

    def weights(self, history: np.ndarray, budget: np.ndarray | None = None) -> np.ndarray:
        _no_budget(self, budget)
        return check_simplex(self.target, "weights", _checked_history(history, min_rows=0).shape[1])

    def covariance(self, history: np.ndarray) -> np.ndarray:
        return trailing_covariance(history, None)


@dataclass(frozen=True)
class InverseVolatility:
    """Weights proportional to ``1 / sigma_i``, the volatilities over the last ``window`` rows."""

    window: Annotated[int, at_least(2)] = 60

    def __post_init__(self) -> None:
        check_fields(self)

    def weights(self, history: np.ndarray, budget: np.ndarray | None = None) -> np.ndarray:
        _no_budget(self, budget)
        inverse = 1.0 / np.sqrt(_variances(self.covariance(history)))
        return inverse / inverse.sum()

    def covariance(self, history: np.ndarray) -> np.ndarray:
        return trailing_covariance(history, self.window)


@dataclass(frozen=True)
class RiskBudgeting:
    """Weights whose variance contributions equal ``budget`` (None: uniform, equal risk contribution),
    from the covariance of the last ``window`` rows.

    A zero budget entry leaves that column out (weight 0, contribution 0); the
    others are budgeted among themselves.
    """

    window: Annotated[int, at_least(2)] = 60
    budget: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        check_fields(self)
        if self.budget is not None:
            object.__setattr__(self, "budget", tuple(float(v) for v in check_simplex(self.budget, "budget")))

    def weights(self, history: np.ndarray, budget: np.ndarray | None = None) -> np.ndarray:
        """``budget``, when given, replaces the configured one for this call (a regime's budget, say)."""
        covariance = self.covariance(history)
        k = covariance.shape[0]
        given = budget if budget is not None else self.budget
        b = np.full(k, 1.0 / k) if given is None else check_simplex(given, "budget", k)
        w = np.zeros(k)
        held = b > 0
        sub = covariance[np.ix_(held, held)]
        _variances(sub)  # a column without variance has no risk budgeting solution
        rows = _checked_history(history)[-self.window:, held]
        try:
            w[held] = _spinu_polish(sub, b[held], _skfolio_weights(rows, b[held]))
        except (SkfolioError, np.linalg.LinAlgError) as err:
            raise DataError(f"risk budgeting has no solution on a covariance of {rows.shape[0]} rows and "
                            f"{rows.shape[1]} columns ({type(err).__name__}: {err}); some mix of the columns has "
                            "(nearly) no variance. Fix: use a window well above the number of columns, or drop a "
                            "column that duplicates or offsets others.") from None
        return w

    def covariance(self, history: np.ndarray) -> np.ndarray:
        return trailing_covariance(history, self.window)


def _skfolio_weights(returns: np.ndarray, budget: np.ndarray) -> np.ndarray:
    """skfolio's variance risk budgeting on ``returns`` with the sample covariance (ddof=1) left as it is.

    Its warning that a solution "may be inaccurate" is silenced: the Newton polish that follows either
    reaches the budget to 1e-12 or fails loudly.
    """
    if budget.size == 1:
        return np.ones(1)
    prior = EmpiricalPrior(covariance_estimator=EmpiricalCovariance(ddof=1, nearest=False))
    model = SkfolioRiskBudgeting(risk_measure=RiskMeasure.VARIANCE, risk_budget=budget, prior_estimator=prior)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate", category=UserWarning)
        return np.asarray(model.fit(returns).weights_, dtype=float)


def _spinu_polish(covariance: np.ndarray, budget: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Newton's method on Spinu's ``f(x) = x'Sx / 2 - b' log x`` from ``start``, rescaled to sum 1.

    At the minimiser ``x_i (S x)_i = b_i`` and ``x'Sx = sum(b) = 1``. It is
    solved on the correlation matrix, for ``y = x sigma`` (``y_i (C y)_i`` is
    the same contribution), so books whose volatilities differ by orders of
    magnitude (a nearly flat one beside an options book) converge alike.
    A step is halved until ``x`` stays positive and ``f`` does not rise. A
    ``LinAlgError`` says there is no minimiser: a positive mix of the columns
    without variance lets ``f`` fall for ever.
    """
    sigma = np.sqrt(np.diag(covariance))
    s = covariance / np.outer(sigma, sigma)
    x = np.clip(np.asarray(start, dtype=float) * sigma, 1e-12, None)
    x = x / math.sqrt(float(x @ s @ x))

    def f(v: np.ndarray) -> float:
        return float(0.5 * v @ s @ v - budget @ np.log(v))

    best, best_error = x, math.inf
    for _ in range(_POLISH_STEPS):
        error = float(np.max(np.abs(x * (s @ x) - budget)))
        if error < best_error:
            best, best_error = x, error
        if error < _POLISH_TOLERANCE:
            break
        gradient = s @ x - budget / x
        step = cho_solve(cho_factor(s + np.diag(budget / x**2)), gradient)
        t, fx = 1.0, f(x)
        while t > 1e-12 and (np.any(x - t * step <= 0) or f(x - t * step) > fx + 1e-15 * abs(fx)):
            t /= 2
        x = x - t * step
    if best_error >= _ACCEPT_TOLERANCE:  # rounding can stall the line search just short of 1e-12
        raise np.linalg.LinAlgError(f"no convergence within {_POLISH_STEPS} Newton steps (largest contribution "
                                    f"error {best_error:.2e})")
    return (best / sigma) / (best / sigma).sum()


def _variances(covariance: np.ndarray) -> np.ndarray:
    """The diagonal of ``covariance``, refused where a column has no variance (risk weights are undefined)."""
    v = np.diag(covariance)
    flat = np.flatnonzero(~(v > 0))
    if flat.size:
        raise DataError(f"history columns {flat.tolist()} have zero variance over the window; risk-based weights "
                        "are undefined. Fix: lengthen the window, or drop a column that does not move.")
    return v


def _checked_history(history: np.ndarray, min_rows: int = 2) -> np.ndarray:
    """``history`` as a finite ``T x K`` float array with at least ``min_rows`` rows and one column."""
    x = np.asarray(history, dtype=float)
    if x.ndim != 2 or x.shape[1] == 0:
        raise DataError(f"history must be a (T, K) array of returns with K >= 1, got shape {x.shape}.")
    if x.shape[0] < min_rows:
        raise DataError(f"history has {x.shape[0]} rows; a covariance needs at least {min_rows}.")
    if not np.isfinite(x).all():
        raise DataError("history holds NaN or infinite returns. Fix: count a day a book did not trade as 0.")
    return x


def _no_budget(allocator: object, budget: np.ndarray | None) -> None:
    if budget is not None:
        raise ConfigError(f"budget: {type(allocator).__name__} takes no risk budget, got {budget!r}. Fix: use "
                          "RiskBudgeting for budgets.", field="budget")
