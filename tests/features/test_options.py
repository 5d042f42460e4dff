"""SVI fits, arbitrage checks and surface features against independent truth."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from dualhrq.data.synthetic import generate_bars, generate_option_chain, svi_surface
from dualhrq.errors import DataError
from dualhrq.features.options import SVIRaw, check_static_arbitrage, fit_svi, surface_features
from dualhrq.primitives.bsm import bsm_greeks

TRUE = SVIRaw(a=0.02, b=0.15, rho=-0.45, m=0.05, sigma=0.2)


def test_svi_fit_recovers_known_parameters() -> None:
    k = np.linspace(-0.8, 0.6, 15)
    fit = fit_svi(k, TRUE.total_variance(k))
    got = np.array([fit.params.a, fit.params.b, fit.params.rho, fit.params.m, fit.params.sigma])
    np.testing.assert_allclose(got, [0.02, 0.15, -0.45, 0.05, 0.2], rtol=1e-7)
    assert fit.rmse < 1e-12


def test_svi_fit_recovers_the_generators_surface() -> None:
    bars = generate_bars(2, n_days=2, seed=5).collect()
    truth = svi_surface(bars, seed=5)
    chain = generate_option_chain(bars, seed=5).filter(pl.col("right") == "C").with_columns(
        k=(pl.col("strike") / (pl.col("underlying") * (pl.col("rate") * pl.col("tau")).exp())).log(),
        w=pl.col("iv") ** 2 * pl.col("tau"))
    for (day, symbol, expiry), one in chain.group_by("date", "symbol", "expiry"):
        fit = fit_svi(one["k"].to_numpy(), one["w"].to_numpy()).params
        row = truth.filter(date=day, symbol=symbol, expiry=expiry).row(0, named=True)
        np.testing.assert_allclose([fit.a, fit.b, fit.rho, fit.m, fit.sigma],
                                   [row[p] for p in ("a", "b", "rho", "m", "sigma")], rtol=1e-6)


def test_svi_fit_is_close_under_quote_noise() -> None:
    k = np.linspace(-0.8, 0.6, 25)
    noisy = TRUE.total_variance(k) * (1 + np.random.default_rng(0).normal(0, 0.002, k.size))
    fit = fit_svi(k, noisy).params
    np.testing.assert_allclose(fit.total_variance(k), TRUE.total_variance(k), rtol=0.01)


def test_vogt_slice_has_butterfly_arbitrage_and_ssvi_slices_do_not() -> None:
    # Gatheral & Jacquier (2014), Example 3.1 (Axel Vogt): a raw SVI slice with negative density
    vogt = SVIRaw(a=-0.0410, b=0.1331, rho=0.3060, m=0.3586, sigma=0.4153)
    assert not check_static_arbitrage([vogt]).butterfly_free
    bars = generate_bars(1, n_days=3, seed=2).collect()
    for _, day in svi_surface(bars, seed=2).group_by("date"):
        slices = [SVIRaw(*row) for row in day.sort("tau").select("a", "b", "rho", "m", "sigma").iter_rows()]
        check = check_static_arbitrage(slices)
        assert check.butterfly_free and check.calendar_free


def test_crossing_slices_are_calendar_arbitrage() -> None:
    later = SVIRaw(a=0.03, b=0.05, rho=0.0, m=0.0, sigma=0.2)  # flatter wings than TRUE: crosses below it
    check = check_static_arbitrage([TRUE, later])
    assert check.butterfly_free and not check.calendar_free and check.calendar_min_gap[0] < 0


def test_surface_features_against_the_true_surface() -> None:
    bars = generate_bars(2, n_days=2, seed=5).collect()
    chain = generate_option_chain(bars, seed=5)
    truth = svi_surface(bars, seed=5).sort("date", "symbol", "tau")
    feats = surface_features(chain)
    assert feats.height == 4 and (feats["arbitrage_free"] == 1.0).all()
    for row in feats.iter_rows(named=True):
        day = truth.filter(date=row["date"], symbol=row["symbol"])
        slices = [SVIRaw(*r) for r in day.select("a", "b", "rho", "m", "sigma").iter_rows()]
        taus = day["tau"].to_numpy()
        atm = np.array([math.sqrt(float(s.total_variance(0.0)) / t) for s, t in zip(slices, taus, strict=True)])
        assert row["atm_iv"] == pytest.approx(atm[0], rel=1e-8)
        assert row["atm_term_slope"] == pytest.approx(np.polyfit(taus, atm, 1)[0], rel=1e-6)
        # 25-delta strikes found independently: forward delta of the call/put at the smile's own vol
        near, tau = slices[0], taus[0]
        ks = np.linspace(-0.5, 0.5, 200001)
        iv = np.sqrt(near.total_variance(ks) / tau)
        d_call = bsm_greeks(1.0, np.exp(ks), tau, 0.0, iv, True)["delta"]
        iv_c, iv_p = iv[np.abs(d_call - 0.25).argmin()], iv[np.abs(d_call - 0.75).argmin()]  # put delta -0.25
        assert row["rr25"] == pytest.approx(iv_c - iv_p, abs=1e-5)
        assert row["bf25"] == pytest.approx(0.5 * (iv_c + iv_p) - atm[0], abs=1e-5)
        assert row["rr25"] < 0  # the generator's smiles are skewed to puts (rho < 0)


def test_bad_chains_are_refused() -> None:
    with pytest.raises(DataError, match="missing columns"):
        surface_features(pl.DataFrame({"date": [1]}))
    with pytest.raises(DataError, match="positive"):
        fit_svi(np.linspace(-1, 1, 6), np.array([0.1, 0.1, -0.1, 0.1, 0.1, 0.1]))
