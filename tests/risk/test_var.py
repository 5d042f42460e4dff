"""VaR and CVaR against closed forms, numerical integrals, arch's own fit and a hand-written FHS simulation."""

import math

import numpy as np
import pytest
from arch import arch_model
from arch.univariate import GARCH, ConstantMean, Normal
from scipy import integrate, stats

from dualhrq.errors import ConfigError, DataError
from dualhrq.risk.var import METHODS, RiskEstimate, risk_table, rolling_var, var_cvar
from dualhrq.risk.var_backtest import backtest_var


def garch_returns(n: int, seed: int, params=(0.03, 0.05, 0.15, 0.80)) -> np.ndarray:
    """Daily simple returns from a constant-mean GARCH(1,1) in percent (mu, omega, alpha, beta), arch's simulator."""
    model = ConstantMean(None, volatility=GARCH(), distribution=Normal(seed=seed))
    return model.simulate(list(params), n, burn=500)["data"].to_numpy() / 100


@pytest.mark.parametrize("level", [0.95, 0.99])
@pytest.mark.parametrize("horizon", [1, 10])
def test_normal_method_is_the_closed_form_on_the_fitted_moments(level, horizon):
    r = np.random.default_rng(0).normal(0.0004, 0.012, 1000)
    mu, sigma = r.mean() * horizon, r.std(ddof=1) * math.sqrt(horizon)  # mu h, sigma sqrt(h)
    q = stats.norm.ppf(1 - level, mu, sigma)
    shortfall = stats.norm.expect(lambda x: x, loc=mu, scale=sigma, ub=q, conditional=True)  # E[X | X <= q]
    est = var_cvar(r, level, horizon, "normal")
    assert est == RiskEstimate("normal", level, horizon, pytest.approx(-q, rel=1e-12),
                               pytest.approx(-shortfall, rel=1e-7))


def test_historical_matches_the_normal_closed_form_on_a_large_sample():
    mu, sigma, n, level = 0.0003, 0.01, 200_000, 0.99
    r = np.random.default_rng(1).normal(mu, sigma, n)
    q = stats.norm.ppf(1 - level, mu, sigma)
    # asymptotic standard error of a sample quantile, sqrt(p (1 - p) / n) / f(q); allow 5 of them
    se = math.sqrt(level * (1 - level) / n) / stats.norm.pdf(q, mu, sigma)
    est = var_cvar(r, level)
    assert abs(est.var - -q) < 5 * se
    assert est.cvar == pytest.approx(-(mu - sigma * stats.norm.pdf(stats.norm.ppf(level)) / (1 - level)), rel=0.01)


def test_historical_by_hand():
    r = np.random.default_rng(2).permutation(-0.001 * np.arange(1, 101))  # -0.001 .. -0.100
    # 5% quantile at order position 0.05 * 101 = 5.05: -0.096 + 0.05 * (-0.095 - -0.096); tail -0.100 .. -0.096
    est = var_cvar(r, 0.95)
    assert est.var == pytest.approx(0.09595, abs=1e-12)
    assert est.cvar == pytest.approx(0.098, abs=1e-12)
    # 10-day: the overlapping compounded returns, worked with a plain loop
    windows = np.array([np.prod(1 + r[i:i + 10]) - 1 for i in range(r.size - 9)])
    ten = var_cvar(r, 0.9, horizon=10)
    k = 0.1 * (windows.size + 1)  # 1-based order position
    ordered = np.sort(windows)
    q = ordered[int(k) - 1] + (k - int(k)) * (ordered[int(k)] - ordered[int(k) - 1])
    assert ten.var == pytest.approx(-q, rel=1e-12)
    assert ten.cvar == pytest.approx(-windows[windows <= q].mean(), rel=1e-12)


def test_student_t_against_the_ppf_and_an_integral_of_the_tail():
    df_true, loc_true, scale_true = 4.0, 0.0005, 0.01
    r = stats.t.rvs(df_true, loc_true, scale_true, size=2000, random_state=np.random.default_rng(3))
    df, loc, scale = stats.t.fit(r)  # scipy's own start works on these fat tails: the same optimum
    assert df == pytest.approx(df_true, rel=0.3)  # the fit recovers the tail, roughly
    table = risk_table(r, methods=("student_t",))
    for _, level, horizon, var, cvar in table.rows():
        loc_h, scale_h = loc * horizon, scale * math.sqrt(horizon)  # loc h, scale sqrt(h)
        q = stats.t.ppf(1 - level, df, loc_h, scale_h)
        tail, _ = integrate.quad(lambda x: x * stats.t.pdf(x, df, loc_h, scale_h), -np.inf, q)
        assert var == pytest.approx(-q, rel=1e-4)  # two optimiser runs from different starts
        assert cvar == pytest.approx(-tail / (1 - level), rel=1e-4)
        assert cvar > var


def test_student_t_fit_reaches_the_normal_limit_on_near_normal_returns_of_small_scale():
    """A t nests the normal (nu -> inf), so its maximum likelihood is at least the normal's; from scipy's default
    start the fit stops near nu = 2 on such data, which would double the 99% VaR."""
    r = np.random.default_rng(11).normal(0.0003, 0.0008, 1260)
    df, loc, scale = stats.t.fit(r)
    assert df < 3 and stats.t.nnlf((df, loc, scale), r) > stats.norm.nnlf(stats.norm.fit(r), r) + 10  # the trap
    est = var_cvar(r, 0.99, method="student_t")
    assert est.var == pytest.approx(-stats.norm.ppf(0.01, r.mean(), r.std()), rel=0.05)
    assert est.cvar == pytest.approx(var_cvar(r, 0.99, method="normal").cvar, rel=0.05)


def test_fhs_one_day_is_the_filtered_residual_tail():
    r = garch_returns(1500, seed=7)
    # arch on returns in percent, with arch's own one-step variance forecast
    res = arch_model(r * 100, mean="Constant", vol="GARCH", p=1, q=1, rescale=False).fit(disp="off")
    sigma = math.sqrt(res.forecast(horizon=1, reindex=False).variance.values[0, 0])
    sample = (res.params["mu"] + sigma * np.asarray(res.std_resid)) / 100
    for level in (0.95, 0.99):
        k = (1 - level) * (sample.size + 1)
        ordered = np.sort(sample)
        q = ordered[int(k) - 1] + (k - int(k)) * (ordered[int(k)] - ordered[int(k) - 1])
        est = var_cvar(r, level, method="fhs")
        assert est.var == pytest.approx(-q, rel=1e-4)  # two optimiser runs, on differently scaled data
        assert est.cvar == pytest.approx(-sample[sample <= q].mean(), rel=1e-4)


def test_fhs_ten_day_agrees_with_a_hand_written_bootstrap_of_the_garch_recursion():
    r = garch_returns(1500, seed=8)
    res = arch_model(r * 100, mean="Constant", vol="GARCH", p=1, q=1, rescale=False).fit(disp="off")
    mu, omega, alpha, beta = res.params
    z = np.asarray(res.std_resid)
    s2 = np.full(20_000, omega + alpha * (r[-1] * 100 - mu) ** 2 + beta * res.conditional_volatility[-1] ** 2)
    draws = np.random.default_rng(9).choice(z, size=(s2.size, 10))
    wealth = np.ones(s2.size)
    for step in range(10):
        eps = np.sqrt(s2) * draws[:, step]
        wealth *= 1 + (mu + eps) / 100
        s2 = omega + alpha * eps**2 + beta * s2
    loss = 1 - wealth
    table = risk_table(r, levels=(0.99,), horizons=(10,), methods=("fhs",), n_sims=20_000)
    assert table["var"][0] == pytest.approx(np.quantile(loss, 0.99), rel=0.05)
    assert table["cvar"][0] == pytest.approx(loss[loss >= np.quantile(loss, 0.99)].mean(), rel=0.05)
    again = risk_table(r, levels=(0.99,), horizons=(10,), methods=("fhs",), n_sims=20_000)
    assert again.equals(table)  # seeded


def test_risk_table_rows_and_consistency_with_var_cvar():
    r = garch_returns(600, seed=10)
    table = risk_table(r, n_sims=2000)
    assert table.columns == ["method", "level", "horizon", "var", "cvar"]
    assert table.height == len(METHODS) * 2 * 2
    assert table.select("method", "level", "horizon").rows() == [
        (m, level, h) for m in METHODS for level in (0.95, 0.99) for h in (1, 10)]
    assert (table["cvar"] >= table["var"]).all()
    for method, level, horizon, var, cvar in table.filter(level=0.99, horizon=10).rows():
        est = var_cvar(r, level, horizon, method, n_sims=2000)
        assert (est.var, est.cvar) == pytest.approx((var, cvar), rel=1e-9)
    worse = table.filter(level=0.99)["var"].to_numpy() > table.filter(level=0.95)["var"].to_numpy()
    assert worse.all()


def test_fhs_rolling_var_covers_a_garch_series_that_a_constant_historical_var_fails():
    """On a known GARCH(1,1), FHS's exceedances come at the promised rate and unbunched; a constant VaR from the
    whole sample's quantile has the right rate by construction but its exceedances bunch in the volatile spells."""
    r = garch_returns(3000, seed=1)
    fhs = rolling_var(r, 0.99, "fhs", window=500, refit_every=50)
    assert np.isnan(fhs[:500]).all() and np.isfinite(fhs[500:]).all()
    passed = backtest_var(r, fhs, 0.99)
    assert passed.n == 2500 and 0.007 < passed.rate < 0.013
    assert passed.pof_pvalue > 0.05 and passed.independence_pvalue > 0.05
    constant = np.where(np.isnan(fhs), np.nan, var_cvar(r, 0.99).var)
    failed = backtest_var(r, constant, 0.99)
    assert failed.pof_pvalue > 0.05
    assert failed.independence_pvalue < 0.05


def test_rolling_historical_and_normal_by_hand():
    r = garch_returns(400, seed=4)
    hist = rolling_var(r, 0.95, "historical", window=100)
    norm = rolling_var(r, 0.95, "normal", window=100)
    for t in (100, 250, 399):
        past = r[t - 100:t]
        assert hist[t] == pytest.approx(var_cvar(past, 0.95).var, rel=1e-12)
        assert norm[t] == pytest.approx(-stats.norm.ppf(0.05, past.mean(), past.std(ddof=1)), rel=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_rolling_var_is_point_in_time(method):
    r = garch_returns(330, seed=5)
    base = rolling_var(r, 0.99, method, window=250, refit_every=20)
    t = 290
    changed = r.copy()
    changed[t:] = np.random.default_rng(6).normal(0, 0.05, r.size - t)  # day t and after
    changed[t] = -0.2  # a loss deep in every method's tail
    moved = rolling_var(changed, 0.99, method, window=250, refit_every=20)
    np.testing.assert_array_equal(moved[:t + 1], base[:t + 1])  # forecasts up to and including t
    if method != "student_t":  # student_t keeps its fitted value until the next refit
        assert moved[t + 1] != base[t + 1]  # t + 1 reads day t's return
    assert not np.array_equal(moved[t + 1:], base[t + 1:])


@pytest.mark.parametrize("kwargs, field", [
    ({"level": 0}, "level"), ({"level": 1}, "level"), ({"level": 1.5}, "level"), ({"horizon": 0}, "horizon"),
    ({"method": "montecarlo"}, "method"), ({"n_sims": 0}, "n_sims")])
def test_bad_settings_name_their_field(kwargs, field):
    with pytest.raises(ConfigError, match=rf"^{field} must be") as err:
        var_cvar(np.zeros(500), **kwargs)
    assert err.value.field == field


def test_bad_returns_are_refused_before_any_fit():
    with pytest.raises(DataError, match=r"^returns has 99 observations; method 'historical' at level 0.99"):
        var_cvar(np.full(99, 0.001), 0.99)
    var_cvar(np.linspace(-0.02, 0.02, 100), 0.99)  # 100: one observation beyond the 1% quantile
    with pytest.raises(DataError, match=r"needs at least 109"):
        var_cvar(np.linspace(-0.02, 0.02, 108), 0.99, horizon=10)
    with pytest.raises(DataError, match=r"^returns has 200 observations; method 'fhs'.*at least 250"):
        var_cvar(np.zeros(200), method="fhs")
    with pytest.raises(DataError, match=r"^returns must be finite, got 1 NaN/inf values \(first at position 3\)"):
        var_cvar(np.r_[np.zeros(3), np.nan, np.zeros(200)])
    with pytest.raises(DataError, match=r"^returns must be a 1-D array"):
        var_cvar(np.zeros((200, 2)))
    with pytest.raises(DataError, match=r"^returns must be simple returns >= -1"):
        var_cvar(np.r_[-1.5, np.zeros(200)])
    with pytest.raises(DataError, match=r"^returns are constant \(0.0\); method 'student_t' has no scale"):
        var_cvar(np.zeros(300), method="student_t")
    assert var_cvar(np.full(300, 0.001), method="normal").var == pytest.approx(-0.001)
    with pytest.raises(ConfigError, match=r"^seed must be an integer in \[0, 4294967295\]"):
        var_cvar(np.zeros(300), seed=-1)
    with pytest.raises(ConfigError, match=r"^levels must be a non-empty sequence"):
        risk_table(np.zeros(200), levels=())


def test_bad_rolling_settings_name_their_field():
    r = np.zeros(300)
    with pytest.raises(ConfigError, match=r"^window must be >= 250 for method 'fhs'"):
        rolling_var(r, 0.99, "fhs", window=100)
    with pytest.raises(ConfigError, match=r"^window must be >= 100 for method 'historical'"):
        rolling_var(r, 0.99, "historical", window=99)
    with pytest.raises(ConfigError, match=r"^refit_every must be a positive integer"):
        rolling_var(r, 0.99, "normal", refit_every=0)
    with pytest.raises(DataError, match=r"^returns has 300 observations, which leaves no day"):
        rolling_var(r, 0.99, "normal", window=300)
    stale = np.r_[np.random.default_rng(0).normal(0, 0.01, 250), np.zeros(300)]
    with pytest.raises(DataError, match=r"^returns are constant over the 250 days before day 510; method 'fhs'"):
        rolling_var(stale, 0.99, "fhs", refit_every=20)
