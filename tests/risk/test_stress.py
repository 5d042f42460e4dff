"""Stress tests against hand repricing with scipy, the bundled index closes and closed-form portfolio risk."""

import math
from datetime import date, datetime

import numpy as np
import polars as pl
import pytest
from arch.univariate import GARCH, ConstantMean, StudentsT
from scipy.stats import norm, t

from dualhrq.data.sources import load_bundled, load_sp500_index
from dualhrq.errors import ConfigError, DataError
from dualhrq.risk.stress import (
    SCENARIOS,
    Scenario,
    correlation_shock,
    equity_shock,
    garch_scenarios,
    historical_stress,
    option_stress,
    scenario_moves,
    vol_shock,
)


def bs(s, k, tau, r, vol, call):
    """Black-Scholes price written out with scipy's normal cdf."""
    d1 = (math.log(s / k) + (r + vol * vol / 2) * tau) / (vol * math.sqrt(tau))
    d2 = d1 - vol * math.sqrt(tau)
    if call:
        return s * norm.cdf(d1) - k * math.exp(-r * tau) * norm.cdf(d2)
    return k * math.exp(-r * tau) * norm.cdf(-d2) - s * norm.cdf(-d1)


S, K, TAU, R, IV, N = 100.0, 100.0, 30 / 365, 0.03, 0.20, 10.0


def straddle(**extra):
    return pl.DataFrame({"symbol": "SPX", "expiry": date(2024, 2, 1), "strike": K, "right": ["C", "P"],
                         "contracts": N, "underlying": S, "tau": TAU, "rate": R, "iv": IV, **extra})


def test_a_straddle_is_fully_repriced_under_a_crash_with_vol_doubled():
    out = option_stress(straddle(), spot_shock=-0.20, vol_shock=2.0, hedge={"SPX": -50.0}).row(0, named=True)
    before = bs(S, K, TAU, R, IV, True) + bs(S, K, TAU, R, IV, False)
    after = bs(80.0, K, TAU, R, 0.40, True) + bs(80.0, K, TAU, R, 0.40, False)
    assert out["value"] == pytest.approx(N * 100 * before, rel=1e-10)
    assert out["full_pnl"] == pytest.approx(N * 100 * (after - before) + (-50.0) * (-20.0), rel=1e-10)
    assert out["gap"] == pytest.approx(out["full_pnl"] - out["greek_pnl"], rel=1e-12)
    only_vol = vol_shock(straddle()).row(0, named=True)
    assert only_vol["full_pnl"] == pytest.approx(
        N * 100 * (bs(S, K, TAU, R, 0.40, True) + bs(S, K, TAU, R, 0.40, False) - before), rel=1e-10)
    assert only_vol["delta_pnl"] == 0.0 and only_vol["gamma_pnl"] == 0.0


def test_the_greek_approximation_misses_the_convexity_of_a_crash_but_not_of_a_small_move():
    h = 1e-3  # the straddle's gamma by central differences of the scipy price
    price = [bs(S + d, K, TAU, R, IV, True) + bs(S + d, K, TAU, R, IV, False) for d in (-h, 0.0, h)]
    gamma = (price[0] - 2 * price[1] + price[2]) / h**2
    crash = option_stress(straddle(), -0.20, 1.0).row(0, named=True)
    small = option_stress(straddle(), -0.005, 1.0).row(0, named=True)
    assert crash["gamma_pnl"] == pytest.approx(N * 100 * gamma * 20.0**2 / 2, rel=1e-5)
    assert abs(crash["gap"]) > 0.3 * abs(crash["full_pnl"])  # the put's payoff bends away from the parabola
    assert crash["greek_pnl"] > crash["full_pnl"]  # and the parabola overstates the gain
    assert abs(small["gap"]) < 0.01 * abs(small["gamma_pnl"])
    assert small["full_pnl"] == pytest.approx(small["greek_pnl"], abs=0.01 * abs(small["gamma_pnl"]))


def test_with_an_svi_slice_the_shocked_vol_is_read_at_the_shocked_moneyness():
    svi = {"a": 0.002, "b": 0.02, "rho": -0.6, "m": 0.0, "sigma": 0.1}
    k = math.log(K / (S * math.exp(R * TAU)))
    iv = math.sqrt((svi["a"] + svi["b"] * (svi["rho"] * k + math.sqrt(k * k + 0.01))) / TAU)
    legs = straddle(**svi).with_columns(iv=pl.lit(iv))
    out = option_stress(legs, -0.10, 1.5).row(0, named=True)
    k_after = math.log(K / (90.0 * math.exp(R * TAU)))
    iv_after = 1.5 * math.sqrt((svi["a"] + svi["b"] * (svi["rho"] * k_after + math.sqrt(k_after**2 + 0.01))) / TAU)
    expect = sum(bs(90.0, K, TAU, R, iv_after, c) - bs(S, K, TAU, R, iv, c) for c in (True, False))
    assert out["full_pnl"] == pytest.approx(N * 100 * expect, rel=1e-10)
    # the strike now sits above the forward, up the call wing, where this negatively skewed smile is lower than
    # at the money: sticky moneyness gains less than sticky strike (the same vol, doubled, at the same strike)
    assert iv_after < 1.5 * iv
    assert out["full_pnl"] < option_stress(legs.drop(*svi), -0.10, 1.5)["full_pnl"].item()


def test_option_stress_refuses_bad_legs_and_shocks():
    with pytest.raises(DataError, match=r"legs lack columns \['iv'\]"):
        option_stress(straddle().drop("iv"), -0.1, 1.0)
    with pytest.raises(DataError, match=r"SVI columns \['a', 'b'\] but not \['rho', 'm', 'sigma'\]"):
        option_stress(straddle(a=0.01, b=0.1), -0.1, 1.0)
    with pytest.raises(DataError, match="column 'iv' is not positive in 2 rows"):
        option_stress(straddle().with_columns(iv=pl.lit(0.0)), -0.1, 1.0)
    with pytest.raises(DataError, match="column 'right' is not 'C' or 'P'"):
        option_stress(straddle().with_columns(right=pl.lit("call")), -0.1, 1.0)
    with pytest.raises(ConfigError, match="spot_shock must be a finite number > -1"):
        option_stress(straddle(), -1.0, 1.0)
    with pytest.raises(ConfigError, match="vol_shock must be a finite number > 0"):
        option_stress(straddle(), -0.1, 0.0)
    with pytest.raises(DataError, match=r"hedge names symbols \['QQQ'\]"):
        option_stress(straddle(), -0.1, 1.0, hedge={"QQQ": 10.0})


@pytest.fixture(scope="module")
def sp500():
    return load_bundled(["SP500"])


def test_a_long_index_position_loses_what_the_index_lost_in_the_gfc(sp500):
    out = historical_stress({"SP500": 1e6}, sp500, ["gfc"]).row(0, named=True)
    closes = sp500.select(day=pl.col("ts").dt.date(), close="close")
    base = closes.filter(pl.col("day") <= date(2008, 9, 1))["close"][-1]  # 29 August: 1 September was Labor Day
    window = closes.filter((pl.col("day") > date(2008, 9, 1)) & (pl.col("day") <= date(2009, 3, 9)))
    assert out["pnl"] == pytest.approx(1e6 * (window["close"][-1] / base - 1), rel=1e-12)
    assert out["return_on_gross"] == pytest.approx(window["close"][-1] / base - 1, rel=1e-12)
    assert out["days"] == window.height
    moves = np.diff(np.r_[base, window["close"].to_numpy()]) / base * 1e6
    assert out["worst_day"] == window["day"][int(np.argmin(moves))] == date(2008, 9, 29)  # TARP voted down
    assert out["worst_day_pnl"] == pytest.approx(moves.min(), rel=1e-12)
    path = np.r_[base, window["close"].to_numpy()]
    assert out["max_drawdown"] == pytest.approx(1e6 * np.max(np.maximum.accumulate(path) - path) / base, rel=1e-12)


def test_positions_are_held_from_the_first_close_and_a_symbol_missing_a_day_keeps_its_close():
    days = [datetime(2024, 1, d) for d in (2, 3, 4, 5)]
    prices = pl.DataFrame({"ts": days + days[:2] + days[3:], "symbol": ["A"] * 4 + ["B"] * 3,
                           "close": [100.0, 110.0, 99.0, 105.0, 50.0, 55.0, 60.0]})
    window = Scenario("test", date(2024, 1, 2), date(2024, 1, 5), "a hand-made window")
    out = historical_stress({"A": 1_000.0, "B": -500.0}, prices, [window]).row(0, named=True)
    pnl = [1_000 * 0.10 - 500 * 0.10, 1_000 * -0.01 - 500 * 0.10, 1_000 * 0.05 - 500 * 0.20]  # B holds 55 on the 4th
    assert out["pnl"] == pytest.approx(pnl[-1]) and out["return_on_gross"] == pytest.approx(pnl[-1] / 1_500)
    assert out["worst_day"] == date(2024, 1, 4) and out["worst_day_pnl"] == pytest.approx(pnl[1] - pnl[0])
    assert out["max_drawdown"] == pytest.approx(pnl[0] - pnl[1])  # from the first day's gain to the second's loss


def test_the_catalogue_runs_on_the_index_and_every_window_loses():
    index = load_sp500_index().with_columns(symbol=pl.lit("SP500"))
    out = historical_stress({"SP500": 1.0}, index)
    assert out["scenario"].to_list() == list(SCENARIOS)
    assert (out["pnl"] < 0).all() and (out["max_drawdown"] >= -out["pnl"] - 1e-12).all()
    closes = index.select(day=pl.col("ts").dt.date(), close="close")
    for sc in SCENARIOS.values():  # each window's return is its closes' ratio (the figures its description quotes)
        first = closes.filter(pl.col("day") <= sc.start)["close"][-1]
        last = closes.filter(pl.col("day") <= sc.end)["close"][-1]
        assert f"{first:.2f}" in sc.description and f"{last:.2f}" in sc.description
        assert out.filter(pl.col("scenario") == sc.name)["pnl"].item() == pytest.approx(last / first - 1)


def test_historical_stress_refuses_unknown_symbols_scenarios_and_dates_outside_the_data(sp500):
    with pytest.raises(DataError, match=r"positions name symbols \['QQQ'\] that the prices lack"):
        historical_stress({"QQQ": 1e6}, sp500, ["gfc"])
    with pytest.raises(DataError, match=r"scenario 'covid' \(2020-02-19\.\.2020-03-23\) lies outside the prices of "
                                        r"SP500, which cover 1999-01-04\.\.2018-12-31"):
        historical_stress({"SP500": 1e6}, sp500, ["gfc", "covid"])
    with pytest.raises(ConfigError, match="unknown scenario 'brexit'; known: \\['dotcom'"):
        historical_stress({"SP500": 1e6}, sp500, ["brexit"])
    with pytest.raises(ConfigError, match="positions must be a non-empty mapping"):
        historical_stress({}, sp500, ["gfc"])
    with pytest.raises(ConfigError, match="end must be after start"):
        Scenario("one_day", date(2010, 5, 6), date(2010, 5, 6), "")
    with pytest.raises(ConfigError, match="start must be a datetime.date"):
        Scenario("text", "2010-05-05", date(2010, 5, 6), "")


def test_equity_and_correlation_shocks_by_hand():
    out = equity_shock({"A": 1e6, "B": -2e5}, -0.20, betas={"B": 1.5})
    assert out["pnl"].to_list() == pytest.approx([-2e5, 6e4])
    vols, rho, w = np.array([0.30, 0.10]), 0.2, np.array([0.6, 0.4])
    cov = np.outer(vols, vols) * np.array([[1, rho], [rho, 1]])
    shock = correlation_shock(w, cov, confidence=0.99)
    assert shock.vol_after == pytest.approx(0.6 * 0.30 + 0.4 * 0.10, rel=1e-12)  # perfectly correlated: vols add
    assert shock.vol_before == pytest.approx(math.sqrt(0.18**2 + 0.04**2 + 2 * rho * 0.18 * 0.04), rel=1e-12)
    assert shock.var_after == pytest.approx(norm.ppf(0.99) * 0.22, rel=1e-12)
    assert shock.var_before < shock.var_after
    hedged = correlation_shock(np.array([0.5, -1.5]), cov)  # a long-short book: the shorts offset exactly
    assert hedged.vol_after == pytest.approx(0.0, abs=1e-8)
    with pytest.raises(DataError, match="positive semi-definite"):
        correlation_shock(w, np.array([[0.01, 0.02], [0.02, 0.01]]))
    with pytest.raises(DataError, match="same N"):
        correlation_shock(np.ones(3), cov)
    with pytest.raises(ConfigError, match="correlation must be a number in"):
        correlation_shock(np.ones(3) / 3, np.eye(3), correlation=-0.6)
    with pytest.raises(ConfigError, match="shock must be a finite number > -1"):
        equity_shock({"A": 1.0}, -1.5)


@pytest.fixture(scope="module")
def garch_returns():
    """3,000 days simulated from a known GARCH(1,1)-t: mu 0.05%, omega 0.02, alpha 0.08, beta 0.9, nu 6 (percent)."""
    model = ConstantMean(None, volatility=GARCH(), distribution=StudentsT(seed=np.random.default_rng(7)))
    sim = model.simulate([0.05, 0.02, 0.08, 0.90, 6.0], nobs=3_000)
    return np.expm1(sim["data"].to_numpy() / 100.0)


def test_garch_one_day_quantiles_match_the_fitted_student_t(garch_returns):
    out = garch_scenarios(garch_returns, horizon=1, n_paths=50_000, seed=1)
    p = out.params
    assert p["alpha[1]"] + p["beta[1]"] < 1 and p["nu"] == pytest.approx(6.0, rel=0.35)
    # tomorrow's variance by hand from the last day's residual and conditional variance (percent units)
    x = 100 * np.log1p(garch_returns)
    var = np.empty_like(x)
    var[0] = x.var()  # arch's backcast differs only in the first days; the recursion forgets it
    for i in range(1, len(x)):
        var[i] = p["omega"] + p["alpha[1]"] * (x[i - 1] - p["mu"]) ** 2 + p["beta[1]"] * var[i - 1]
    sigma = math.sqrt(p["omega"] + p["alpha[1]"] * (x[-1] - p["mu"]) ** 2 + p["beta[1]"] * var[-1])
    nu = p["nu"]
    for level, simulated in out.quantiles((0.01, 0.05, 0.5, 0.95)).items():
        exact = math.expm1((p["mu"] + sigma * t.ppf(level, nu) * math.sqrt((nu - 2) / nu)) / 100)
        assert simulated == pytest.approx(exact, abs=0.03 * sigma / 100 + 2e-4)


def test_garch_paths_compound_reproducibly_and_bad_arguments_are_refused(garch_returns):
    out = garch_scenarios(garch_returns, horizon=10, n_paths=2_000, seed=3)
    assert out.paths.shape == (2_000, 10)
    assert np.array_equal(out.paths, garch_scenarios(garch_returns, horizon=10, n_paths=2_000, seed=3).paths)
    assert not np.array_equal(out.paths, garch_scenarios(garch_returns, horizon=10, n_paths=2_000, seed=4).paths)
    assert out.worst_path[-1] == out.horizon_returns.min() == pytest.approx(out.quantiles([0.0])[0.0])
    # ten days' spread against the analytic GARCH forecast: variance of the summed log returns
    p, x = out.params, 100 * np.log1p(garch_returns)
    fit = ConstantMean(x, volatility=GARCH(), distribution=StudentsT()).fit(disp="off")
    expected = float(fit.forecast(horizon=10).variance.to_numpy()[-1].sum())
    assert fit.params["beta[1]"] == pytest.approx(p["beta[1]"], rel=1e-3)
    assert np.var(np.log1p(out.horizon_returns) * 100) == pytest.approx(expected, rel=0.12)
    with pytest.raises(ConfigError, match="n_paths must be a positive integer, got 0"):
        garch_scenarios(garch_returns, n_paths=0)
    with pytest.raises(ConfigError, match="horizon must be a positive integer"):
        garch_scenarios(garch_returns, horizon=-1)
    with pytest.raises(DataError, match="at least 100 finite"):
        garch_scenarios(garch_returns[:50])


def test_a_scenarios_move_and_volatility_ratio_come_from_the_index_closes():
    index = load_sp500_index()
    move, ratio = scenario_moves(index, "gfc")
    before = index.filter(pl.col("ts") <= datetime(2008, 8, 29))
    through = index.filter(pl.col("ts") <= datetime(2009, 3, 9))
    assert move == pytest.approx(through["close"][-1] / before["close"][-1] - 1)
    r_before = np.diff(before["close"].to_numpy()[-21:]) / before["close"].to_numpy()[-21:-1]
    r_through = np.diff(through["close"].to_numpy()[-21:]) / through["close"].to_numpy()[-21:-1]
    assert ratio == pytest.approx(np.std(r_through, ddof=1) / np.std(r_before, ddof=1))
    assert move < -0.4 and ratio > 1.5  # the index fell 47%; its volatility was 1.7 times August 2008's
    with pytest.raises(DataError, match="scenario 'covid'"):
        scenario_moves(index.filter(pl.col("ts") < datetime(2020, 3, 1)), "covid")
