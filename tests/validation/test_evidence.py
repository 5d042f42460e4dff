"""Run statistics from per-path return series, checked against the statistics called one by one."""

import math
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from dualhrq.config import compose_train, parse
from dualhrq.errors import ConfigError, DataError
from dualhrq.primitives.returns import max_drawdown, sharpe_ratio
from dualhrq.validation import statistics as st
from dualhrq.validation.evidence import (
    StatsSettings,
    Trials,
    evaluate_paths,
    trials_from_config,
    trials_from_sharpes,
)

T = 300
DAYS = [datetime(2020, 1, 1) + timedelta(days=i) for i in range(T)]


def _returns(n_paths=3, seed=0, momentum=None):
    """Three paths of a model on the same dates, buy-and-hold and momentum (identical on every path)."""
    rng = np.random.default_rng(seed)
    market = rng.normal(0.0003, 0.01, T)
    momentum = rng.normal(0.0, 0.008, T) if momentum is None else momentum
    frames = []
    for p in range(n_paths):
        model = market * rng.uniform(0.2, 0.8) + rng.normal(0.0004, 0.006, T)
        for name, net in (("model", model), ("buy_and_hold", market), ("momentum", momentum)):
            frames.append(pl.DataFrame({"ts": DAYS, "path": p, "strategy": name, "net": net}))
    return pl.concat(frames).sample(fraction=1.0, shuffle=True, seed=1)  # order must not matter


def _series(frame, strategy, path):
    return frame.filter((pl.col("strategy") == strategy) & (pl.col("path") == path)).sort("ts")["net"].to_numpy()


SETTINGS = StatsSettings(bootstrap_reps=100, block_size=3, seed=7)
TRIALS = Trials(n=10, sr_variance=4e-4, source="config")


def test_metrics_equal_the_statistics_called_directly():
    frame = _returns()
    ev = evaluate_paths(frame, "buy_and_hold", TRIALS, SETTINGS)
    models = [_series(frame, "model", p) for p in range(3)]
    bench, mom = _series(frame, "buy_and_hold", 0), _series(frame, "momentum", 0)
    sharpes = np.array([sharpe_ratio(m) for m in models])
    m = ev.metrics
    assert m["oos/sharpe"] == pytest.approx(sharpes.mean())
    assert m["oos/sharpe_std"] == pytest.approx(sharpes.std())
    assert m["oos/sharpe_min"] == pytest.approx(sharpes.min()) and m["oos/n_paths"] == 3
    assert m["oos/max_drawdown"] == pytest.approx(max(max_drawdown(x) for x in models))
    average = np.mean(models, axis=0)  # the path-average series: equal capital in each path
    assert m["oos/psr"] == pytest.approx(st.probabilistic_sharpe_ratio(average))
    assert m["oos/dsr"] == pytest.approx(st.deflated_sharpe_ratio(average, 10, 4e-4))
    assert m["dsr/sr_benchmark"] == pytest.approx(st.expected_max_sharpe(10, 4e-4) * math.sqrt(252))
    assert m["oos/min_trl_days"] == pytest.approx(st.min_track_record_length(average))
    assert m["oos/spa_pvalue"] == st.superior_predictive_ability(average, bench, reps=100, block_size=3,
                                                                  seed=7).pvalue
    assert m["oos/rc_pvalue"] == st.reality_check(average, bench, reps=100, block_size=3, seed=7).pvalue
    assert m["oos/spa_studentized_pvalue"] == st.studentized_spa(average, bench, reps=100, block_size=3,
                                                                  seed=7)["consistent"]
    assert m["vs/momentum/rc_pvalue"] == st.reality_check(average, mom, reps=100, block_size=3, seed=7).pvalue
    ci = st.bootstrap_ci(average, lambda x: sharpe_ratio(x), level=0.9, reps=100, block_size=3, seed=7)
    assert (m["oos/sharpe_ci_low"], m["oos/sharpe_ci_high"]) == pytest.approx((ci.low, ci.high))
    b = sharpe_ratio(bench)
    assert m["baseline/sharpe"] == pytest.approx(b) == m["baseline/buy_and_hold/sharpe"]
    assert m["oos/sharpe_improvement"] == pytest.approx((sharpes.mean() - b) / abs(b))
    assert m["vs/momentum/sharpe_improvement"] == pytest.approx(
        (sharpes.mean() - sharpe_ratio(mom)) / abs(sharpe_ratio(mom)))
    # one row per path plus the path average, whose p-value columns are the run's
    assert [r["path"] for r in ev.path_rows] == ["0", "1", "2", "mean"]
    assert ev.path_rows[1]["psr"] == pytest.approx(st.probabilistic_sharpe_ratio(models[1]))
    assert ev.path_rows[-1]["spa p"] == m["oos/spa_pvalue"]
    np.testing.assert_allclose(ev.path_sharpes, sharpes)


def test_one_path_and_its_average_are_the_same_series():
    ev = evaluate_paths(_returns(n_paths=1), "buy_and_hold", TRIALS, SETTINGS)
    first, average = ev.path_rows
    assert {k: v for k, v in first.items() if k != "path"} == {k: v for k, v in average.items() if k != "path"}


def test_zero_baseline_sharpe_leaves_the_improvement_undefined():
    frame = _returns(n_paths=1, momentum=np.tile([0.01, -0.01], T // 2))  # mean 0: Sharpe exactly 0
    ev = evaluate_paths(frame, "momentum", TRIALS, SETTINGS)
    assert math.isnan(ev.metrics["oos/sharpe_improvement"])  # a gate on it reads "not evaluated"


def test_trials_from_a_sweep_use_per_period_sharpe_variance():
    trials = trials_from_sharpes([1.0, 0.5, math.nan, -0.2], 252, "test")
    per_period = np.array([1.0, 0.5, -0.2]) / math.sqrt(252)
    assert trials.n == 3 and trials.sr_variance == pytest.approx(per_period.var(ddof=1))
    assert trials_from_sharpes([0.7], 252, "one").sr_variance == 0.0
    assert trials_from_config({"n_trials": None, "sr_variance": None}) is None
    assert trials_from_config({"n_trials": 5, "sr_variance": 0.001}) == Trials(5, 0.001, "config")


@pytest.mark.parametrize("make,field", [
    (lambda: trials_from_config({"n_trials": 5, "sr_variance": None}), "sr_variance"),
    (lambda: Trials(0, 0.0, "x"), "n must be a positive integer"),
    (lambda: Trials(3, -1.0, "x"), "sr_variance"),
    (lambda: StatsSettings(bootstrap_reps=0), "bootstrap_reps"),
    (lambda: parse(StatsSettings, {"block_size": 0}, "validation.stats"), "validation.stats.block_size"),
    (lambda: parse(StatsSettings, {"ci_level": 1.5}, "validation.stats"), "validation.stats.ci_level"),
    (lambda: parse(StatsSettings, {"ci_method": "magic"}, "validation.stats"), "validation.stats.ci_method"),
])
def test_bad_settings_name_the_field(make, field):
    with pytest.raises(ConfigError, match="^" + field.replace(".", r"\.")):
        make()


def test_returns_without_the_primary_baseline_are_refused():
    frame = _returns().filter(pl.col("strategy") != "buy_and_hold")
    with pytest.raises(DataError, match="buy_and_hold"):
        evaluate_paths(frame, "buy_and_hold", TRIALS, SETTINGS)


def test_trials_from_config_names_the_path_it_was_read_at():
    cfg = compose_train(["validation.stats.n_trials=0", "validation.stats.sr_variance=0.1"])
    with pytest.raises(ConfigError, match=r"^validation\.stats\.n_trials must be a positive integer, got 0\."):
        trials_from_config(cfg.validation.stats)
    with pytest.raises(ConfigError, match=r"^stats\.sr_variance must be a finite non-negative number, got -1"):
        trials_from_config({"n_trials": 3, "sr_variance": -1}, "stats")
    with pytest.raises(ConfigError, match=r"^n_trials is null but sr_variance is set"):
        trials_from_config({"n_trials": None, "sr_variance": 0.1})
