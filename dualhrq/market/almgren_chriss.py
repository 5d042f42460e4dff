"""Almgren-Chriss optimal execution: the risk-averse liquidation trajectory in closed form.

Almgren and Chriss (2000), "Optimal execution of portfolio transactions",
J. Risk 3(2). Selling ``X`` shares over ``T`` in ``N`` intervals of
``tau = T / N`` with arithmetic Brownian prices (volatility ``sigma`` per
unit time, in price units), permanent impact ``g(v) = gamma v`` and temporary
impact ``h(v) = epsilon sgn(v) + eta v``, the trajectory minimising
``E[cost] + lambda Var[cost]`` holds

    x_j = X sinh(kappa (T - t_j)) / sinh(kappa T),   t_j = j tau,

with ``cosh(kappa tau) = 1 + tau^2 kappa_tilde^2 / 2``,
``kappa_tilde^2 = lambda sigma^2 / eta_tilde`` and
``eta_tilde = eta - gamma tau / 2`` (section 4, eq. 18). ``lambda = 0`` gives
the straight line (TWAP). Its expected cost and variance are the paper's
closed forms (eq. 20); ``expected_cost_of`` / ``variance_of`` evaluate the
definitions (eqs. 7-8) for any trajectory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dualhrq.config import NonNegative, Positive, PositiveInt, check_fields
from dualhrq.errors import ConfigError


@dataclass(frozen=True)
class AlmgrenChriss:
    """One liquidation problem; every field in consistent units (shares, price units, time units)."""

    shares: float
    horizon: Positive
    n_steps: PositiveInt
    sigma: Positive
    eta: Positive
    gamma: NonNegative = 0.0
    epsilon: NonNegative = 0.0
    risk_aversion: NonNegative = 0.0

    def __post_init__(self) -> None:
        check_fields(self)
        if self.eta_tilde <= 0:
            raise ConfigError(f"eta={self.eta!r} must exceed gamma * tau / 2 = {self.eta - self.eta_tilde!r} "
                              "(temporary impact above half the permanent impact per interval). "
                              "Fix: raise eta or n_steps.", field="eta")

    @property
    def tau(self) -> float:
        return self.horizon / self.n_steps

    @property
    def eta_tilde(self) -> float:
        return self.eta - 0.5 * self.gamma * self.tau

    @property
    def kappa(self) -> float:
        kt2 = self.risk_aversion * self.sigma**2 / self.eta_tilde
        return math.acosh(1.0 + 0.5 * kt2 * self.tau**2) / self.tau

    def holdings(self) -> np.ndarray:
        """x_0 = X, ..., x_N = 0 at t_j = j tau."""
        t = np.arange(self.n_steps + 1) * self.tau
        k, T = self.kappa, self.horizon
        if k * T < 1e-9:
            return self.shares * (1.0 - t / T)
        return self.shares * np.sinh(k * (T - t)) / np.sinh(k * T)

    def trades(self) -> np.ndarray:
        """n_j = x_{j-1} - x_j, the shares sold in interval j = 1..N."""
        return -np.diff(self.holdings())

    def expected_cost(self) -> float:
        """E[cost] of the optimal trajectory, closed form (eq. 20)."""
        X, T, tau, k = self.shares, self.horizon, self.tau, self.kappa
        base = 0.5 * self.gamma * X**2 + self.epsilon * X
        if k * T < 1e-9:
            return base + self.eta_tilde * X**2 / T
        num = math.tanh(0.5 * k * tau) * (tau * math.sinh(2 * k * T) + 2 * T * math.sinh(k * tau))
        return base + self.eta_tilde * X**2 * num / (2 * tau**2 * math.sinh(k * T) ** 2)

    def variance(self) -> float:
        """Var[cost] of the optimal trajectory, closed form (eq. 20)."""
        X, T, tau, k = self.shares, self.horizon, self.tau, self.kappa
        if k * T < 1e-9:
            return self.sigma**2 * X**2 * tau * np.sum((1.0 - np.arange(1, self.n_steps + 1) * tau / T) ** 2)
        num = tau * math.sinh(k * T) * math.cosh(k * (T - tau)) - T * math.sinh(k * tau)
        return 0.5 * self.sigma**2 * X**2 * num / (math.sinh(k * T) ** 2 * math.sinh(k * tau))

    def expected_cost_of(self, holdings: np.ndarray) -> float:
        """E[cost] = gamma X^2 / 2 + epsilon sum|n_j| + eta_tilde / tau sum n_j^2 (eq. 7) of any trajectory."""
        n = -np.diff(holdings)
        return float(0.5 * self.gamma * self.shares**2 + self.epsilon * np.abs(n).sum()
                     + self.eta_tilde / self.tau * np.sum(n * n))

    def variance_of(self, holdings: np.ndarray) -> float:
        """Var[cost] = sigma^2 tau sum_{j=1}^{N} x_j^2 (eq. 8) of any trajectory."""
        return float(self.sigma**2 * self.tau * np.sum(np.asarray(holdings)[1:] ** 2))


def schedule_weights(n_steps: int, risk_aversion: float, sigma: float, eta: float, gamma: float = 0.0) -> np.ndarray:
    """Share of a position change executed in each of the next ``n_steps`` bars, front-loaded by risk aversion.

    The Almgren-Chriss trades of a unit order over ``n_steps`` bars (time unit
    one bar); they sum to one, so a target path filtered with them reaches
    every new target after ``n_steps`` bars.
    """
    plan = AlmgrenChriss(shares=1.0, horizon=float(n_steps), n_steps=n_steps, sigma=sigma, eta=eta, gamma=gamma,
                         risk_aversion=risk_aversion)
    return plan.trades()
