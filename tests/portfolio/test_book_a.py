"""Book A on hand-built chains priced by Black-Scholes from a known volatility surface."""

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from dualhrq.errors import ConfigError, DataError
from dualhrq.portfolio.book_a import OptionsBook, bsm


def chain(spots: dict[str, list[float]], vol=lambda k, s, tau, d: 0.25 + 0.1 * (np.log(k / s)) ** 2 + 0.002 * d,
          start=date(2024, 1, 2), rate=0.03) -> pl.DataFrame:
    """Daily chains: expiries on fixed dates, strikes every 1% of the first spot, BSM prices at ``vol``."""
    rows = []
    expiries = [start + timedelta(days=n) for n in (24, 52, 80)]
    for sym, path in spots.items():
        strikes = path[0] * np.arange(0.80, 1.2001, 0.01)
        for d, s in enumerate(path):
            today = start + timedelta(days=d)
            for ex in expiries:
                tau = (ex - today).days / 365.0
                if tau <= 0:
                    continue
                for right in ("C", "P"):
                    iv = vol(strikes, s, tau, d)
                    price = bsm(s, strikes, tau, rate, iv, right == "C")["price"]
                    rows.append(pl.DataFrame({"date": today, "symbol": sym, "expiry": ex, "tau": tau,
                                              "strike": strikes, "right": right, "underlying": s, "rate": rate,
                                              "iv": iv, "price": price}))
    return pl.concat(rows)


def test_bsm_matches_hull_and_finite_differences():
    # Hull, Options, Futures and Other Derivatives, Example 15.6: S=42, K=40, r=10%, sigma=20%, T=0.5
    call = bsm(42.0, 40.0, 0.5, 0.10, 0.20, True)
    put = bsm(42.0, 40.0, 0.5, 0.10, 0.20, False)
    assert call["price"] == pytest.approx(4.76, abs=5e-3) and put["price"] == pytest.approx(0.81, abs=5e-3)
    h = 1e-4
    for right in (True, False):
        g = bsm(42.0, 40.0, 0.5, 0.1, 0.2, right)
        up, dn = bsm(42.0 + h, 40.0, 0.5, 0.1, 0.2, right), bsm(42.0 - h, 40.0, 0.5, 0.1, 0.2, right)
        assert g["delta"] == pytest.approx((up["price"] - dn["price"]) / (2 * h), rel=1e-6)
        assert g["gamma"] == pytest.approx((up["delta"] - dn["delta"]) / (2 * h), rel=1e-5)
        v = bsm(42.0, 40.0, 0.5, 0.1, 0.2 + h, right)["price"] - bsm(42.0, 40.0, 0.5, 0.1, 0.2 - h, right)["price"]
        assert g["vega"] == pytest.approx(v / (2 * h), rel=1e-6)
        t = bsm(42.0, 40.0, 0.5 - h, 0.1, 0.2, right)["price"] - bsm(42.0, 40.0, 0.5 + h, 0.1, 0.2, right)["price"]
        assert g["theta"] == pytest.approx(t / (2 * h), rel=1e-5)


def _path(n=30, seed=0, s0=100.0, vol=0.25):
    rng = np.random.default_rng(seed)
    return list(s0 * np.exp(np.cumsum(np.r_[0.0, rng.normal(0, vol / np.sqrt(365), n - 1)])))


def test_straddle_is_delta_hedged_within_limits_and_attribution_leaves_a_small_residual():
    book = OptionsBook(structure="straddle", vega_limit=2_000.0, gamma_limit=5_000.0, min_tau_days=20,
                       roll_tau_days=5)
    out = book.run(chain({"AAA": _path(), "BBB": _path(seed=1, s0=40.0)}))
    assert out.height == 2 * 29
    assert (out["net_delta"].abs() <= 0.5).all()  # hedged to the nearest share
    assert (out["vega"].abs() * 0.01 <= 2_000.0 + 1e-6).all() and (out["contracts"] > 0).all()
    terms = out.select(pl.sum_horizontal("delta_pnl", "gamma_pnl", "vega_pnl", "theta_pnl") + pl.col("residual"))
    assert np.allclose(terms.to_series().to_numpy(), out["total"].to_numpy())
    # the residual holds the third- and cross-order terms of a one-day step: a few % of the attributed P&L
    attributed = out.select(pl.col("delta_pnl", "gamma_pnl", "vega_pnl", "theta_pnl").abs().sum()).sum_horizontal()
    assert out["residual"].abs().sum() < 0.05 * attributed.item()
    assert (out["vega_pnl"] > 0).mean() > 0.9  # the surface rises 0.2 vol points a day: long vega gains


def test_rolls_before_expiry_and_short_strangles_sell_the_wings():
    spots = _path(n=40)
    out = OptionsBook(structure="strangle", side="short", width=0.05, min_tau_days=20, roll_tau_days=5).run(
        chain({"AAA": spots}))
    assert (out["vega"] < 0).all() and (out["theta"] > 0).all()  # short options: short vega, collects theta
    book = OptionsBook(structure="strangle", width=0.05, min_tau_days=20, roll_tau_days=5)
    quotes = chain({"AAA": spots}).filter(pl.col("date") == date(2024, 1, 2))
    legs = book._legs(quotes).sort("right")
    assert legs["expiry"].to_list() == [date(2024, 1, 26)] * 2  # first expiry with >= 20 days
    assert legs["strike"].to_list() == pytest.approx([105.0, 95.0])


def test_gamma_pnl_by_hand_for_one_day():
    spots = [100.0, 102.0, 102.0]
    out = OptionsBook(vega_limit=1e9, gamma_limit=1e9, commission_per_contract=0.0).run(
        chain({"AAA": spots}, vol=lambda k, s, tau, d: np.full_like(k, 0.2)))
    first = out.row(0, named=True)
    g = bsm(100.0, 100.0, 24 / 365, 0.03, 0.2, True)["gamma"] * 2  # straddle: call and put gamma are equal
    assert first["gamma_pnl"] == pytest.approx(0.5 * first["contracts"] * 100 * g * 4.0, rel=1e-9)
    assert first["vega_pnl"] == 0.0


def test_bad_book_a_settings_and_chains_are_refused():
    with pytest.raises(ConfigError, match="structure"):
        OptionsBook(structure="butterfly")
    with pytest.raises(ConfigError, match="roll_tau_days"):
        OptionsBook(min_tau_days=5, roll_tau_days=10)
    with pytest.raises(DataError, match="iv"):
        OptionsBook().run(chain({"AAA": _path(5)}).drop("iv"))
