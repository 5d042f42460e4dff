"""SVI fits, arbitrage checks and surface features against independent truth."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from scipy import optimize

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


def test_svi_fit_reports_the_rmse_of_the_parameters_it_returns_on_noisy_sparse_slices() -> None:
    # 1 vol point of quote noise on few strikes near the money, where an unconstrained inner fit leaves
    # Zeliade's domain; the true slice is admissible, so the best admissible fit is at least as close
    rng = np.random.default_rng(11)
    tau = 0.1
    truth = SVIRaw(TRUE.a * tau, TRUE.b * tau, TRUE.rho, TRUE.m, TRUE.sigma)
    for n_strikes, half_width in ((7, 0.3), (5, 0.2)):
        k = np.linspace(-half_width, half_width, n_strikes)
        for _ in range(40):
            w = (np.sqrt(truth.total_variance(k) / tau) + rng.normal(0, 0.01, k.size)) ** 2 * tau
            fit = fit_svi(k, w)
            p = fit.params
            assert fit.rmse == pytest.approx(np.sqrt(np.mean((p.total_variance(k) - w) ** 2)), rel=1e-9, abs=1e-15)
            assert p.a >= 0 and p.b >= 0 and abs(p.rho) <= 1 and p.b * (1 + abs(p.rho)) <= 4 * (1 + 1e-12)
            assert fit.rmse <= np.sqrt(np.mean((truth.total_variance(k) - w) ** 2)) * (1 + 1e-9)


def gatheral_jacquier_g(s: SVIRaw, k: np.ndarray) -> np.ndarray:
    """g(k) of Gatheral & Jacquier (2014, eq. 2.1) with w', w'' by central differences."""
    h = 1e-4
    w, up, down = s.total_variance(k), s.total_variance(k + h), s.total_variance(k - h)
    w1, w2 = (up - down) / (2 * h), (up - 2 * w + down) / h**2
    return (1 - k * w1 / (2 * w)) ** 2 - w1**2 / 4 * (1 / w + 0.25) + w2 / 2


VOGT = SVIRaw(a=-0.0410, b=0.1331, rho=0.3060, m=0.3586, sigma=0.4153)  # Gatheral & Jacquier (2014), Example 3.1


@pytest.mark.parametrize("shift", [0.0, 0.6, 0.9, 1.2])
def test_gatheral_jacquier_slice_is_flagged_where_its_density_is_negative(shift: float) -> None:
    s = SVIRaw(VOGT.a, VOGT.b, VOGT.rho, VOGT.m + shift, VOGT.sigma)
    fine = np.linspace(-1.5, 5.0, 650001)
    negative = fine[gatheral_jacquier_g(s, fine) < 0]  # one stretch: 0.64..1.26 unshifted, ~1.8..4.2 shifted
    quoted = [(-1.5, 1.5)]
    check = check_static_arbitrage([s], quoted)
    assert check.butterfly_free == (negative.min() > 1.5)
    widened = check_static_arbitrage([s], quoted, margin=3.5)
    (v,) = widened.violations
    assert not widened.butterfly_free and v.kind == "butterfly" and v.slices == (0,)
    assert v.k_lo == pytest.approx(negative.min(), abs=0.003) and v.k_hi == pytest.approx(negative.max(), abs=0.003)
    assert v.worst == pytest.approx(widened.butterfly_min_g[0]) and v.worst < -0.02
    assert gatheral_jacquier_g(s, np.array([v.k_worst]))[0] == pytest.approx(v.worst, abs=1e-6)


def test_ssvi_slices_are_free_of_static_arbitrage() -> None:
    bars = generate_bars(1, n_days=3, seed=2).collect()
    for _, day in svi_surface(bars, seed=2).group_by("date"):
        slices = [SVIRaw(*row) for row in day.sort("tau").select("a", "b", "rho", "m", "sigma").iter_rows()]
        check = check_static_arbitrage(slices, [(-1.5, 1.5)] * len(slices))
        assert check.butterfly_free and check.calendar_free and not check.violations


NEAR, FAR = TRUE, SVIRaw(a=0.05, b=0.12, rho=-0.3, m=0.0, sigma=0.3)  # FAR's flatter left wing dips below NEAR's
CROSSING = optimize.brentq(lambda k: float(FAR.total_variance(k) - NEAR.total_variance(k)), -1.0, 0.0)


def test_calendar_check_covers_the_quoted_range_and_locates_the_crossing() -> None:
    assert -0.41 < CROSSING < -0.39
    quoted = [(-0.3, 0.3), (-0.35, 0.3)]
    assert check_static_arbitrage([NEAR, FAR], quoted).calendar_free  # the slices cross outside the quotes
    check = check_static_arbitrage([NEAR, FAR], quoted, margin=0.2)
    (v,) = check.violations
    assert v.kind == "calendar" and v.slices == (0, 1) and check.butterfly_free
    assert v.k_lo == pytest.approx(-0.5) and v.k_hi == pytest.approx(CROSSING, abs=0.003)  # from the range's edge
    assert v.worst == pytest.approx(float(FAR.total_variance(-0.5) - NEAR.total_variance(-0.5)), rel=1e-9)
    assert np.isnan(check_static_arbitrage([NEAR, FAR], [(-0.3, 0.3), (0.5, 0.9)]).calendar_min_gap[0])  # no overlap


def test_surface_arbitrage_flag_reads_the_quoted_strikes_only() -> None:
    k = np.linspace(-0.3, 0.3, 9)
    rows = [{"date": date(2024, 1, 2), "symbol": "X", "expiry": date(2024, 1, 2) + timedelta(days=round(tau * 365)),
             "tau": tau, "strike": 100.0 * math.exp(kk), "underlying": 100.0, "rate": 0.0,
             "iv": math.sqrt(float(s.total_variance(kk)) / tau)}
            for s, tau in ((NEAR, 0.25), (FAR, 0.5)) for kk in k]
    chain = pl.DataFrame(rows)
    assert surface_features(chain)["arbitrage_free"].item() == 1.0
    assert surface_features(chain, arbitrage_margin=0.2)["arbitrage_free"].item() == 0.0


def test_crossing_slices_are_calendar_arbitrage() -> None:
    later = SVIRaw(a=0.03, b=0.05, rho=0.0, m=0.0, sigma=0.2)  # below TRUE everywhere
    check = check_static_arbitrage([TRUE, later], [(-1.0, 1.0)] * 2)
    assert check.butterfly_free and not check.calendar_free and check.calendar_min_gap[0] < 0
    (v,) = check.violations
    assert (v.k_lo, v.k_hi) == (-1.0, 1.0)


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


def test_the_surface_over_daily_closes_follows_close_to_close_realized_variance() -> None:
    """On one bar per session the surface's ATM variance starts from the squared daily returns (span-20 EWM)."""
    days = [d for i in range(40) if (d := date(2020, 1, 6) + timedelta(days=i)).weekday() < 5]
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, len(days))))
    ts = [datetime.combine(d, datetime.min.time()) for d in days]
    bars = pl.DataFrame({"ts": ts, "symbol": "IDX", "close": close})
    surface = svi_surface(bars, seed=1, n_expiries=2).sort("date", "tau")
    r = np.diff(np.log(close))
    x = np.r_[0.0, r**2 * 252]  # the first session has no return: it counts as zero variance
    weights = (1 - 2 / 21) ** np.arange(len(x))[::-1]
    v0 = 1.21 * np.array([np.sum(weights[-i - 1:] * x[: i + 1]) / np.sum(weights[-i - 1:]) for i in range(len(x))])
    last = surface.filter(pl.col("date") == days[-1]).row(0, named=True)
    theta = last["a"] + last["b"] * (last["rho"] * -last["m"] + math.sqrt(last["m"] ** 2 + last["sigma"] ** 2))
    kappa, v_long, tau = 4.0, 0.30**2, last["tau"]
    expected = v_long * tau + (v0[-1] - v_long) * (1 - math.exp(-kappa * tau)) / kappa
    assert theta == pytest.approx(expected, rel=1e-9)
