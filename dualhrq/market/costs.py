"""Transaction costs: market impact (slippage), commissions and the borrow fee of short positions.

Slippage is the adverse move of the execution price beyond the touch (ask
for a buy, bid for a sell), as a fraction of the mid price, for an order of
``q`` shares in a bar that traded ``V`` shares:

- ``linear``: ``coef * q / V``, the linear temporary impact of Almgren and
  Chriss (2000);
- ``sqrt``: ``coef * sigma * sqrt(q / V)``, the square-root impact law
  (Almgren, Thum, Hauptmann and Li 2005; Toth et al. 2011), ``sigma`` the
  recent per-bar return volatility;
- ``exp_decay``: transient impact (Obizhaeva and Wang 2013): each marketable
  fill pays its own ``coef * q / V`` and displaces the quotes by that much
  of the mid in its direction; the displacement decays as
  ``exp(-dt / decay_s)``. The replay moves both quotes by the displacement
  left at each step, so later fills, the LULD limit states and the Rule 201
  bid test all see the moved book (selling into one's own buying pressure
  sells at a raised bid, never above it).

Crossing the spread (paying ask minus mid, or mid minus bid) is reported as
its own cost. Commissions are per share plus basis points of the notional.
Short positions held overnight pay ``borrow_bps`` a year on their closing
value for every calendar day until the next session (a Friday short held to
Monday pays three days), at the stock-loan convention of actual/360.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import numpy as np

from dualhrq.config import FINITE, NON_NEGATIVE, Positive, at_least, check_fields, one_of

SLIPPAGE_MODELS = ("none", "linear", "sqrt", "exp_decay")
FiniteNonNegative = Annotated[float, FINITE, NON_NEGATIVE]


@dataclass(frozen=True)
class CostModel:
    """Slippage model and fee schedule of the strict simulator (``backtest.costs``)."""

    slippage: Annotated[str, one_of(SLIPPAGE_MODELS)] = "sqrt"
    impact_coef: FiniteNonNegative = 0.5
    decay_s: Positive = 300.0  # seconds
    commission_per_share: FiniteNonNegative = 0.0035
    commission_bps: FiniteNonNegative = 0.0
    borrow_bps: FiniteNonNegative = 50.0
    vol_window: Annotated[int, at_least(2)] = 30  # bars

    def __post_init__(self) -> None:
        check_fields(self)

    def slip(self, qty: np.ndarray, volume: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        """Adverse move beyond the touch, as a fraction of mid, of signed orders ``qty`` (NaN where ``volume`` <= 0)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            part = np.where(volume > 0, np.abs(qty) / volume, np.nan)
        if self.slippage == "none":
            return np.where(np.isfinite(part), 0.0, np.nan)
        if self.slippage == "sqrt":
            return self.impact_coef * sigma * np.sqrt(part)
        return self.impact_coef * part  # linear, and the own impact of a transient fill

    def decay(self, dt_s: float) -> float:
        """Share of the transient displacement left after ``dt_s`` seconds (0 where impact is not transient)."""
        return math.exp(-dt_s / self.decay_s) if self.slippage == "exp_decay" else 0.0

    def push(self, qty: np.ndarray, volume: np.ndarray) -> np.ndarray:
        """Signed displacement (a fraction of mid) a marketable fill adds to the transient impact."""
        if self.slippage != "exp_decay":
            return np.zeros_like(qty)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(volume > 0, self.impact_coef * qty / volume, 0.0)

    def commission(self, qty: np.ndarray, price: np.ndarray) -> np.ndarray:
        """Per-share plus basis-point commission of fills ``qty`` at ``price`` (0 where nothing filled)."""
        size = np.abs(qty)
        fee = size * self.commission_per_share
        if self.commission_bps:
            fee = fee + np.where(size > 0, size * price, 0.0) * self.commission_bps * 1e-4
        return fee

    def borrow(self, short_value: np.ndarray, days: int) -> np.ndarray:
        """The borrow fee of short positions worth ``short_value`` held ``days`` calendar days (actual/360)."""
        return short_value * self.borrow_bps * 1e-4 * days / 360.0


def bar_volatility(close: np.ndarray, window: int) -> np.ndarray:
    """(T, N) std of the last ``window`` one-bar log returns up to each bar (NaN gaps count as no move)."""
    r = np.zeros_like(close)
    with np.errstate(invalid="ignore", divide="ignore"):
        np.log(close[1:] / close[:-1], out=r[1:])
    r[~np.isfinite(r)] = 0.0
    c1, c2 = np.cumsum(r, axis=0), np.cumsum(r * r, axis=0)
    s1, s2 = c1.copy(), c2.copy()
    s1[window:] -= c1[:-window]
    s2[window:] -= c2[:-window]
    n = np.minimum(np.arange(1, r.shape[0] + 1), window)[:, None].astype(float)
    var = np.maximum(s2 - s1 * s1 / n, 0.0) / np.maximum(n - 1, 1)
    return np.sqrt(var)
