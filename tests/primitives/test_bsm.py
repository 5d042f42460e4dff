"""BSM prices and Greeks against a textbook example, put-call parity and finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dualhrq.primitives.bsm import bsm_greeks, bsm_price

# spot, strike, tau, rate, vol, dividend yield: in, at and out of the money, short and long
CASES = [(100.0, 90.0, 0.25, 0.03, 0.2, 0.0), (100.0, 100.0, 1.0, 0.05, 0.35, 0.02),
         (50.0, 60.0, 0.5, 0.01, 0.5, 0.01), (200.0, 210.0, 2.0, 0.04, 0.15, 0.03)]


def test_prices_match_the_textbook_example() -> None:
    # Hull, Options, Futures and Other Derivatives, Example 15.6: c = 4.76, p = 0.81
    c, p = bsm_price(42.0, 40.0, 0.5, 0.1, 0.2, np.array([True, False]))
    assert c == pytest.approx(4.76, abs=0.005) and p == pytest.approx(0.81, abs=0.005)


@pytest.mark.parametrize("spot,strike,tau,rate,vol,div", CASES)
def test_put_call_parity(spot, strike, tau, rate, vol, div) -> None:
    c, p = bsm_price(spot, strike, tau, rate, vol, np.array([True, False]), div)
    assert c - p == pytest.approx(spot * math.exp(-div * tau) - strike * math.exp(-rate * tau), rel=1e-12)
    gc, gp = (bsm_greeks(spot, strike, tau, rate, vol, call, div) for call in (True, False))
    assert gc["delta"] - gp["delta"] == pytest.approx(math.exp(-div * tau), rel=1e-12)
    for same in ("gamma", "vega", "vanna", "volga"):
        assert gc[same] == pytest.approx(gp[same], rel=1e-12)


@pytest.mark.parametrize("call", [True, False])
@pytest.mark.parametrize("spot,strike,tau,rate,vol,div", CASES)
def test_greeks_match_finite_differences(spot, strike, tau, rate, vol, div, call) -> None:
    args = dict(spot=spot, strike=strike, tau=tau, rate=rate, vol=vol, div=div)

    def price(**bump: float) -> float:
        return float(bsm_price(**{**args, **bump}, is_call=call))

    def greek(name: str, **bump: float) -> float:
        return float(bsm_greeks(**{**args, **bump}, is_call=call)[name])

    def diff(f, key: str, h: float) -> float:
        return (f(**{key: args[key] + h}) - f(**{key: args[key] - h})) / (2 * h)

    g = bsm_greeks(**args, is_call=call)
    hs, hv, ht = spot * 1e-4, 1e-5, 1e-6
    assert g["delta"] == pytest.approx(diff(price, "spot", hs), rel=1e-6)
    assert g["gamma"] == pytest.approx(
        (price(spot=spot + hs) - 2 * price() + price(spot=spot - hs)) / hs**2, rel=1e-4)
    assert g["vega"] == pytest.approx(diff(price, "vol", hv), rel=1e-6)
    assert g["theta"] == pytest.approx(-diff(price, "tau", ht), rel=1e-5)
    assert g["rho"] == pytest.approx(diff(price, "rate", 1e-6), rel=1e-6)
    assert g["vanna"] == pytest.approx(diff(lambda **b: greek("delta", **b), "vol", hv), rel=1e-5, abs=1e-9)
    assert g["volga"] == pytest.approx(diff(lambda **b: greek("vega", **b), "vol", hv), rel=1e-5, abs=1e-7)
    assert g["charm"] == pytest.approx(-diff(lambda **b: greek("delta", **b), "tau", ht), rel=1e-5, abs=1e-9)
