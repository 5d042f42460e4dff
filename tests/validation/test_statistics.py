"""Sharpe-ratio statistics and SPA / Reality Check against hand-worked numbers, scipy and arch."""

import dataclasses
import math

import numpy as np
import pytest
from arch.bootstrap import SPA, StationaryBootstrap, StepM, optimal_block_length
from scipy import stats

from dualhrq.errors import ConfigError, DataError
from dualhrq.primitives.returns import max_drawdown
from dualhrq.validation import statistics as st


def _moment_series(sr=0.1, n=96):
    """n returns with per-period SR (ddof=1) exactly ``sr``, skewness 0 and Pearson kurtosis 3.

    A third of the centred values sit at +-x and the rest at 0: m4 / m2^2 = 1 / (1/3) = 3.
    """
    x = np.r_[np.full(n // 6, 1.0), np.full(n // 6, -1.0), np.zeros(n - n // 3)] * 0.01
    return x + sr * x.std(ddof=1)


def _psr_by_hand(r, sr_star):
    n, m = r.size, r.mean()
    c = r - m
    m2, m3, m4 = (np.mean(c**p) for p in (2, 3, 4))
    sr = m / math.sqrt(m2 * n / (n - 1))
    skew, kurt = m3 / m2**1.5, m4 / m2**2
    z = (sr - sr_star) * math.sqrt(n - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    return stats.norm.cdf(z)


def test_psr_hand_worked():
    r = _moment_series()
    assert stats.skew(r) == pytest.approx(0.0, abs=1e-12)
    assert stats.kurtosis(r, fisher=False) == pytest.approx(3.0)
    # z = 0.1 sqrt(95) / sqrt(1 + (3 - 1) / 4 * 0.01) = 0.974679 / 1.002497 = 0.972252; Phi(z) = 0.834537
    assert st.probabilistic_sharpe_ratio(r) == pytest.approx(0.834537, abs=1e-6)


def test_psr_matches_direct_computation_on_simulated_returns():
    rng = np.random.default_rng(1)
    for i in range(30):
        n = int(rng.integers(30, 2000))
        r = rng.standard_t(int(rng.integers(3, 30)), n) * 0.01 + rng.normal(0, 0.002)
        if i % 2:
            r = np.expm1(r * 3)  # skewed
        sr_star = float(rng.normal(0, 0.05))
        expected = _psr_by_hand(r, sr_star)
        assert st.probabilistic_sharpe_ratio(r, sr_star) == pytest.approx(expected, rel=1e-10)


def test_min_track_record_length():
    # 1 + (1 + (3 - 1) / 4 * 0.01) * (1.644854 / 0.1)^2 = 1 + 1.005 * 270.5544 = 272.907
    assert st.min_track_record_length(_moment_series()) == pytest.approx(272.907, abs=1e-3)
    rng = np.random.default_rng(2)
    for _ in range(20):
        r = np.expm1(rng.standard_t(5, 300) * 0.01 + 0.001)
        sr = r.mean() / r.std(ddof=1)
        sr_star, alpha = sr - rng.uniform(0.01, 0.1), rng.uniform(0.01, 0.2)
        n_star = st.min_track_record_length(r, sr_star, alpha)
        # At n = MinTRL the PSR, with the observed moments, reaches exactly 1 - alpha.
        var = 1 - stats.skew(r) * sr + (stats.kurtosis(r, fisher=False) - 1) / 4 * sr**2
        z = (sr - sr_star) * math.sqrt(n_star - 1) / math.sqrt(var)
        assert stats.norm.cdf(z) == pytest.approx(1 - alpha)
    assert st.min_track_record_length(-_moment_series()) == math.inf


def test_expected_max_sharpe_against_monte_carlo():
    rng = np.random.default_rng(3)
    for n_trials, variance in [(10, 1.0), (100, 0.04), (1000, 2.5e-5)]:
        simulated = (rng.standard_normal((2000, n_trials)) * math.sqrt(variance)).max(axis=1).mean()
        assert st.expected_max_sharpe(n_trials, variance) == pytest.approx(simulated, rel=0.04)
    assert st.expected_max_sharpe(1, 1.0) == 0.0
    with pytest.raises(ConfigError):
        st.expected_max_sharpe(0, 1.0)


def test_deflated_sharpe_is_psr_against_expected_max():
    r = np.random.default_rng(4).normal(0.001, 0.01, 750)
    for n_trials, variance in [(1, 0.01), (20, 0.001), (500, 0.0004)]:
        expected = st.probabilistic_sharpe_ratio(r, st.expected_max_sharpe(n_trials, variance))
        assert st.deflated_sharpe_ratio(r, n_trials, variance) == expected
    assert st.deflated_sharpe_ratio(r, 1, 0.01) == st.probabilistic_sharpe_ratio(r)
    assert st.deflated_sharpe_ratio(r, 100, 0.001) < st.probabilistic_sharpe_ratio(r)


def _market(seed=5, t=500):
    rng = np.random.default_rng(seed)
    bench = rng.normal(0.0002, 0.01, t)
    models = np.column_stack([bench + rng.normal(0, 0.004, t) + d for d in (-0.0005, 0.0, 0.0003)])
    return bench, models


@pytest.mark.parametrize(
    ("test", "key"), [(st.superior_predictive_ability, "consistent"), (st.reality_check, "upper")]
)
def test_pvalues_equal_arch(test, key):
    bench, models = _market()
    excess = models - bench[:, None]
    for block_size in (7, None):
        result = test(models, bench, reps=500, block_size=block_size, seed=11)
        expected_block = block_size or max(1, round(optimal_block_length(excess)["stationary"].mean()))
        spa = SPA(-bench, -models, block_size=expected_block, reps=500, bootstrap="stationary", seed=11)
        spa.compute()
        assert result.pvalue == spa.pvalues[key]
        assert result.block_size == expected_block and result.reps == 500
        assert result.statistic == pytest.approx(excess.mean(axis=0).max())


@pytest.mark.parametrize("test", [st.superior_predictive_ability, st.reality_check])
def test_power_and_size(test):
    rng = np.random.default_rng(6)
    bench = rng.normal(0.0, 0.01, 1000)
    better = bench + rng.normal(0.002, 0.005, 1000)
    worse = bench + rng.normal(-0.002, 0.005, 1000)
    assert test(better, bench, reps=300).pvalue < 0.01
    assert test(worse, bench, reps=300).pvalue > 0.5
    assert test(bench.copy(), bench, reps=300).pvalue == 1.0


def test_result_is_frozen_and_inputs_checked():
    bench, models = _market()
    result = st.reality_check(models, bench, reps=50)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.pvalue = 0.0
    with pytest.raises(DataError):
        st.superior_predictive_ability(models[:-1], bench)
    with pytest.raises(ConfigError):
        st.superior_predictive_ability(models, bench, reps=0)


def _arch_spa(models, bench, block_size, reps, seed):
    spa = SPA(-bench, -models, block_size=block_size, reps=reps, bootstrap="stationary", seed=seed)
    spa.compute()
    return spa


def test_studentized_spa_equals_arch_where_studentizing_changes_nothing():
    # One model, or models whose excess returns differ only by constants (equal variances):
    # dividing by the common w is monotone, so Hansen's p-values equal arch's unstudentized ones.
    rng = np.random.default_rng(7)
    bench = rng.normal(0.0, 0.01, 400)
    noise = rng.normal(0.0, 0.004, 400)
    one = bench + noise + 0.0009
    shifted = np.column_stack([bench + noise + d for d in (0.0009, 0.0003, -0.0008)])
    for models in (one[:, None], shifted):
        ours = st.studentized_spa(models, bench, reps=400, block_size=5, seed=3)
        spa = _arch_spa(models, bench, 5, 400, 3)
        for key in ("lower", "consistent", "upper"):
            assert ours[key] == spa.pvalues[key]


def test_studentized_spa_is_scale_invariant_per_model_unlike_arch():
    # Scaling one model's excess return by 5 leaves Hansen's t-statistics unchanged but moves arch's.
    rng = np.random.default_rng(8)
    bench = rng.normal(0.0, 0.01, 500)
    models = np.column_stack([bench + rng.normal(0.0003, 0.004, 500), bench + rng.normal(0.0002, 0.002, 500)])
    scaled = models.copy()
    scaled[:, 1] = bench + 5 * (models[:, 1] - bench)
    a = st.studentized_spa(models, bench, reps=300, block_size=4, seed=1)
    b = st.studentized_spa(scaled, bench, reps=300, block_size=4, seed=1)
    assert a == b
    assert _arch_spa(models, bench, 4, 300, 1).pvalues["consistent"] != \
        _arch_spa(scaled, bench, 4, 300, 1).pvalues["consistent"]


def test_studentized_spa_hand_computed_statistic():
    # Recompute T and the bootstrap distribution by hand from arch's own resamples and kernel variance.
    rng = np.random.default_rng(9)
    bench = rng.normal(0.0, 0.01, 300)
    models = np.column_stack([bench + rng.normal(0.0005, 0.005, 300), bench + rng.normal(-0.0001, 0.01, 300)])
    excess = models - bench[:, None]
    spa = SPA(-bench, -models, block_size=6, reps=200, bootstrap="stationary", seed=5)
    spa._compute_variance()
    w = np.sqrt(spa._loss_diff_var)
    n = 300
    t_stat = max(0.0, (np.sqrt(n) * excess.mean(0) / w).max())
    boot = np.array([x[0].mean(0) for x, _ in spa.bootstrap.bootstrap(200)])
    upper = np.mean(np.maximum(0, (np.sqrt(n) * (boot - excess.mean(0)) / w).max(1)) > t_stat)
    assert st.studentized_spa(models, bench, reps=200, block_size=6, seed=5)["upper"] == upper


def _shifted_by_standard_errors(shifts, seed=1, n=500):
    """Benchmark and models ``bench + e + k SE`` for each ``k`` in ``shifts``; ``e`` is demeaned, so the mean
    excess return is exactly ``k`` standard errors."""
    rng = np.random.default_rng(seed)
    bench = rng.normal(0.0003, 0.01, n)
    noise = rng.normal(0.0, 0.004, n)
    noise -= noise.mean()
    se = noise.std(ddof=1) / math.sqrt(n)
    return bench, [bench + noise + k * se for k in shifts]


def test_spa_pvalues_never_fall_as_the_model_gets_worse():
    # Hansen (2005): T = max(0, ...) and p = P*(T* >= T), so a model no better than the benchmark has p = 1;
    # from 3 SE better to 6 SE worse every SPA p-value rises (weakly), and White's RC (unclipped) too.
    shifts = (3, 1, 0, -1, -2, -6)
    bench, models = _shifted_by_standard_errors(shifts)
    boot = {"reps": 500, "block_size": 5, "seed": 2}
    spa = [st.superior_predictive_ability(m, bench, **boot).pvalue for m in models]
    rc = [st.reality_check(m, bench, **boot).pvalue for m in models]
    student = [st.studentized_spa(m, bench, **boot) for m in models]
    studentized = {k: [s[k] for s in student] for k in ("lower", "consistent", "upper")}
    for name, p in {"spa": spa, "rc": rc, **studentized}.items():
        assert p == sorted(p), (name, p)
    assert spa[2:] == [1.0] * 4 and all(s == {"lower": 1.0, "consistent": 1.0, "upper": 1.0} for s in student[2:])
    assert spa[0] < 0.05 and student[0]["consistent"] < 0.05  # 3 SE better: superior at 5%
    assert rc[-1] > 0.99  # 6 SE worse
    # a positive statistic keeps arch's p-value exactly
    assert spa[0] == _arch_spa(models[0][:, None], bench, 5, 500, 2).pvalues["consistent"]


def test_an_inferior_model_beside_a_superior_one_changes_nothing_in_studentized_spa():
    # Adding a model 6 SE worse to a superior one: the max statistic and its consistent p-value stay put.
    bench, (good, bad) = _shifted_by_standard_errors((2.5, -6))
    boot = {"reps": 400, "block_size": 5, "seed": 4}
    alone = st.studentized_spa(good, bench, **boot)["consistent"]
    assert st.studentized_spa(np.column_stack([good, bad]), bench, **boot)["consistent"] == alone < 0.1


def test_stepm_equals_arch():
    rng = np.random.default_rng(10)
    bench = rng.normal(0.0, 0.01, 600)
    models = np.column_stack([bench + rng.normal(d, 0.004, 600) for d in (0.002, -0.001, 0.0015, 0.0)])
    step = StepM(-bench, -models, size=0.05, block_size=5, reps=300, bootstrap="stationary", seed=2)
    step.compute()
    ours = st.stepwise_superior_models(models, bench, size=0.05, reps=300, block_size=5, seed=2)
    assert ours == sorted(step.superior_models)
    assert ours == [0, 2]  # the two models with a clear edge, not the flat or the losing one
    with pytest.raises(ConfigError, match="size"):
        st.stepwise_superior_models(models, bench, size=1.5)


def test_bootstrap_ci_equals_arch_conf_int():
    r = np.random.default_rng(11).normal(0.0005, 0.01, 300)
    ci = st.bootstrap_ci(r, max_drawdown, level=0.8, reps=200, block_size=7, seed=4)
    bs = StationaryBootstrap(7, r, seed=4)
    expected = bs.conf_int(lambda x: np.atleast_1d(max_drawdown(x)), reps=200, method="percentile", size=0.8)
    assert (ci.low, ci.high) == (expected[0, 0], expected[1, 0])
    assert ci.estimate == max_drawdown(r) and ci.low <= ci.high


@pytest.mark.parametrize("draw", ["normal", "student_t"])
def test_bootstrap_sharpe_ci_covers_the_true_sharpe_at_its_nominal_rate(draw):
    # 200 simulated series with a known per-period Sharpe of 0.08; a 90% interval should cover it
    # about 180 times (binomial sd 4.2): accept 165..195.
    rng = np.random.default_rng(12 if draw == "normal" else 13)
    true_sr, covered = 0.08, 0
    for i in range(200):
        if draw == "normal":
            r = rng.normal(true_sr * 0.01, 0.01, 400)
        else:  # t(5) scaled to unit variance: sd = sqrt(5/3)
            r = (rng.standard_t(5, 400) / math.sqrt(5 / 3) + true_sr) * 0.01
        ci = st.bootstrap_ci(r, lambda x: x.mean() / x.std(ddof=1), level=0.9, reps=200, block_size=1, seed=i)
        covered += ci.low <= true_sr <= ci.high
    assert 165 <= covered <= 195


def test_bootstrap_ci_refuses_bad_settings():
    r = np.random.default_rng(0).normal(0, 0.01, 50)
    with pytest.raises(ConfigError, match="method"):
        st.bootstrap_ci(r, np.mean, method="bogus")
    with pytest.raises(ConfigError, match="level"):
        st.bootstrap_ci(r, np.mean, level=95)
    with pytest.raises(ConfigError, match="reps"):
        st.bootstrap_ci(r, np.mean, reps=0)


def test_dsr_worked_example_of_bailey_and_lopez_de_prado_2014():
    # "The Deflated Sharpe Ratio", numerical example: N=100 trials with annualised SR variance 1/2,
    # best annualised SR 2.5 over T=1250 daily observations (250 a year), skewness -3, kurtosis 10.
    # The paper reports SR0 = 0.1132 per day and DSR = 0.9004.
    sr0 = st.expected_max_sharpe(100, 0.5 / 250)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    dsr = st.psr_from_moments(2.5 / math.sqrt(250), 1250, -3.0, 10.0, sr0)
    assert dsr == pytest.approx(0.9004, abs=5e-4)


def test_psr_from_moments_matches_scipy_and_the_series_version():
    r = np.expm1(np.random.default_rng(14).standard_t(4, 800) * 0.01 + 0.0008)
    sr = r.mean() / r.std(ddof=1)
    expected = _psr_by_hand(r, 0.02)
    assert st.psr_from_moments(sr, r.size, stats.skew(r), stats.kurtosis(r, fisher=False), 0.02) == \
        pytest.approx(expected, rel=1e-12)
    assert st.probabilistic_sharpe_ratio(r, 0.02) == pytest.approx(expected, rel=1e-12)


def test_stationary_bootstrap_variance_equals_arch_spa_internal_variance():
    rng = np.random.default_rng(15)
    x = np.column_stack([np.convolve(rng.normal(0, 1, 260), [1, 0.6, 0.3])[:250], rng.normal(0, 2, 250)])
    for block in (1, 4, 12):
        spa = SPA(np.zeros_like(x), -x, block_size=block, reps=10)
        spa._compute_variance()  # arch's loop over lags, on loss differentials 0 - (-x) = x
        np.testing.assert_allclose(st.stationary_bootstrap_variance(x, block), spa._loss_diff_var, rtol=1e-10)
