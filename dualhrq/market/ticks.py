"""Prices as exact integers: units of $0.0001, on the tick grid of Regulation NMS Rule 612.

Rule comparisons (a 10% decline, a price at its LULD band, a print above the
bid) must not depend on how a decimal price happens to round in binary:
``0.9 * 10.70`` is not ``9.63`` in floating point. The rule engine therefore
reads every price once, rounded to a unit of $0.0001, and works on
integer-valued float64 arrays (exact up to 2**53 units, NaN where there is no
price). Quoting and execution prices lie on the minimum price variation of
Rule 612: $0.01 at $1.00 and above, $0.0001 below.
"""

from __future__ import annotations

import numpy as np

UNITS_PER_DOLLAR = 10_000
CENT = 100  # units
ONE_DOLLAR = UNITS_PER_DOLLAR


def to_units(price: np.ndarray | float) -> np.ndarray:
    """Dollar prices -> integer-valued float64 units of $0.0001 (NaN stays NaN)."""
    return np.rint(np.asarray(price, dtype=np.float64) * UNITS_PER_DOLLAR)


def to_dollars(units: np.ndarray | float) -> np.ndarray:
    """Units of $0.0001 -> dollar prices."""
    return np.asarray(units, dtype=np.float64) / UNITS_PER_DOLLAR


def tick(units: np.ndarray) -> np.ndarray:
    """The minimum price variation at each price: one cent from $1.00 up, $0.0001 below."""
    return np.where(units >= ONE_DOLLAR, float(CENT), 1.0)


def round_half_up(numerator: np.ndarray, denominator: float) -> np.ndarray:
    """numerator / denominator rounded half up, exactly, for integer-valued floats."""
    return np.floor_divide(2 * numerator + denominator, 2 * denominator)


def ceil_to_tick(units: np.ndarray) -> np.ndarray:
    """The lowest price on the tick grid at or above ``units`` (what a buyer pays)."""
    t = tick(np.ceil(units))
    return np.ceil(np.ceil(units) / t) * t


def floor_to_tick(units: np.ndarray) -> np.ndarray:
    """The highest price on the tick grid at or below ``units`` (what a seller gets)."""
    t = tick(np.floor(units))
    return np.floor(np.floor(units) / t) * t
