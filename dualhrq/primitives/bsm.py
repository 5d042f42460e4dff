"""Black-Scholes-Merton prices and Greeks (Black & Scholes 1973; Merton 1973).

European options with a continuous dividend yield; theta and charm are per
year of calendar time (minus the derivative in time to expiry). Every
argument broadcasts, so one call prices a whole chain.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

__all__ = ["ArrayLike", "bsm_greeks", "bsm_price"]

ArrayLike = np.ndarray | float


def _norm_pdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _d1_d2(spot: ArrayLike, strike: ArrayLike, tau: ArrayLike, rate: ArrayLike, vol: ArrayLike,
           div: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sd = np.asarray(vol, dtype=float) * np.sqrt(tau)
    d1 = (np.log(np.asarray(spot, dtype=float) / strike) + (np.asarray(rate) - div) * tau) / sd + 0.5 * sd
    return d1, d1 - sd, sd


def bsm_price(spot: ArrayLike, strike: ArrayLike, tau: ArrayLike, rate: ArrayLike, vol: ArrayLike,
              is_call: np.ndarray | bool, div: ArrayLike = 0.0) -> np.ndarray:
    """European option value; ``is_call`` selects call (True) or put (False) per element."""
    d1, d2, _ = _d1_d2(spot, strike, tau, rate, vol, div)
    s_disc, k_disc = spot * np.exp(-np.asarray(div) * tau), strike * np.exp(-np.asarray(rate) * tau)
    call = s_disc * ndtr(d1) - k_disc * ndtr(d2)
    put = k_disc * ndtr(-d2) - s_disc * ndtr(-d1)
    return np.where(is_call, call, put)


def bsm_greeks(spot: ArrayLike, strike: ArrayLike, tau: ArrayLike, rate: ArrayLike, vol: ArrayLike,
               is_call: np.ndarray | bool, div: ArrayLike = 0.0) -> dict[str, np.ndarray]:
    """delta, gamma, vega, theta, rho and the second-order vanna, volga (vomma) and charm.

    Units: per unit of spot, per unit of volatility (not per vol point), per
    unit of rate, per year of calendar time.
    """
    d1, d2, sd = _d1_d2(spot, strike, tau, rate, vol, div)
    tau, rate, div, vol = (np.asarray(x, dtype=float) for x in (tau, rate, div, vol))
    q_disc, r_disc = np.exp(-div * tau), np.exp(-rate * tau)
    pdf = _norm_pdf(d1)
    sign = np.where(is_call, 1.0, -1.0)
    n_d1, n_d2 = ndtr(sign * d1), ndtr(sign * d2)
    vega = spot * q_disc * pdf * np.sqrt(tau)
    # e^{-q tau} n(d1) d(d1)/d(tau), with d(d1)/d(tau) = (2 (r - q) tau - d2 sd) / (2 tau sd)
    drift_term = q_disc * pdf * (2 * (rate - div) * tau - d2 * sd) / (2 * tau * sd)
    return {
        "delta": sign * q_disc * n_d1,
        "gamma": q_disc * pdf / (spot * sd),
        "vega": vega,
        "theta": (-spot * q_disc * pdf * vol / (2 * np.sqrt(tau))
                  - sign * rate * strike * r_disc * n_d2 + sign * div * spot * q_disc * n_d1),
        "rho": sign * strike * tau * r_disc * n_d2,
        "vanna": -q_disc * pdf * d2 / vol,
        "volga": vega * d1 * d2 / vol,
        "charm": sign * div * q_disc * n_d1 - drift_term,
    }
