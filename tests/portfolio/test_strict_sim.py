"""The strict simulator end to end: the adversarial month, the training job's calls, the replay CLI."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import polars as pl
import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf, open_dict

from dualhrq.config import CONF_DIR, build, compose_train
from dualhrq.data.synthetic import MarketParams, generate_bars
from dualhrq.errors import ConfigError, DataError
from dualhrq.evaluation.replay import replay as replay_main
from dualhrq.market.audit import summary_line
from dualhrq.market.backtest import SignalBacktest
from dualhrq.market.costs import CostModel
from dualhrq.portfolio.strict_sim import StrictSimBacktest, adversarial_signals
from dualhrq.training.preflight import check_training_config
from dualhrq.validation.cpcv import CombinatorialPurgedKFold
from dualhrq.validation.evidence import StatsSettings, Trials, evaluate_paths
from dualhrq.validation.oos import path_returns

MONTH = dict(n_symbols=8, start="2024-01-02", n_days=21, seed=0)
WEEK = dict(n_symbols=3, start="2024-01-02", n_days=5, seed=0)
LONG = dict(n_symbols=2, start="2024-01-02", n_days=30, seed=0)  # paths long enough for the SPA bootstrap


@pytest.fixture(scope="module")
def month():
    return generate_bars(**MONTH).collect()


@pytest.fixture(scope="module")
def week():
    return generate_bars(**WEEK).collect()


def test_adversarial_month_breaks_no_rule_and_is_refused_often(month):
    signals = adversarial_signals(month).filter(pl.col("ts").dt.date() > pl.date(2024, 1, 2))
    result = StrictSimBacktest(month).run(signals)
    report = result.report
    assert report.height == 20  # the first day only gives the previous close
    assert report["violations"].sum() == 0
    assert report["rejected_ssr_short_posted_above_bid"].sum() > 0
    assert report["rejections"].sum() == report.select(pl.sum_horizontal(pl.col("^rejected_.*$"))).sum().item()
    assert "0 violations: no rule was broken" in summary_line(report)
    assert result.details()["violations"] == 0.0
    net = result.returns
    assert np.allclose(net["gross"] - net["cost"], net["net"]) and (net["cost"] > 0).all()


def test_a_restriction_triggered_the_day_before_the_first_decision_holds_on_it():
    crash_week = generate_bars(**{**WEEK, "seed": 19}).collect()  # SYN000 falls 18% on 2024-01-04
    signals = adversarial_signals(crash_week)
    later = StrictSimBacktest(crash_week).run(signals.filter(pl.col("ts").dt.date() >= pl.date(2024, 1, 5)))
    full = StrictSimBacktest(crash_week).run(signals)
    day = pl.Series(later.replay.grid.days)
    first = np.isin(later.replay.grid.day, np.flatnonzero((day == date(2024, 1, 5)).to_numpy()))
    whole = np.isin(full.replay.grid.day, np.flatnonzero((pl.Series(full.replay.grid.days) == date(2024, 1, 5))
                                                         .to_numpy()))
    restricted = later.replay.rules.ssr[first]
    assert restricted[:, 0].all()  # the whole day after the trigger
    np.testing.assert_array_equal(restricted, full.replay.rules.ssr[whole])
    assert later.report["violations"].sum() == 0


@pytest.mark.slow
@pytest.mark.parametrize("slippage", ["none", "linear", "sqrt", "exp_decay"])
def test_adversarial_replays_over_ten_seeds_break_no_rule_and_trip_luld(slippage):
    totals = {"violations": 0, "limit_states": 0, "pauses": 0, "fills": 0}
    for seed in range(10):
        bars = generate_bars(n_symbols=4, start="2024-01-02", n_days=4, seed=seed,
                             params=MarketParams(spike_rate=0.2)).collect()
        costs = CostModel(slippage=slippage, impact_coef=0.05)  # the rules, not a month of losses, are tested
        result = StrictSimBacktest(bars, costs=costs).run(adversarial_signals(bars))
        counts = result.replay.rules.luld.counts()
        totals["violations"] += int(result.report["violations"].sum())
        totals["fills"] += int(result.report["fills"].sum())
        totals["limit_states"] += counts["limit_states"]
        totals["pauses"] += counts["pauses"]
    assert totals["violations"] == 0 and totals["fills"] > 0
    assert totals["limit_states"] > 0 and totals["pauses"] > 0


def _prediction_frame(bars: pl.DataFrame, every: int = 30) -> pl.DataFrame:
    """A training job's prediction frame on intraday bars: one decision every ``every`` minutes, 15-bar labels."""
    rng = np.random.default_rng(0)
    frame = (bars.filter(pl.col("ts").dt.minute() % every == 0)
             .select("ts", "symbol", t1=pl.col("ts") + pl.duration(minutes=15)))
    return frame.with_columns(fold=pl.lit(0, pl.Int32), signal=pl.Series(np.tanh(rng.normal(size=frame.height))),
                              forecast=0.0, target=0.0, next_return=0.0).filter(
        pl.col("ts").dt.date() > pl.date(2024, 1, 2))


@pytest.mark.slow
def test_the_training_job_calls_work_with_strict_sim():
    cfg = compose_train(["backtest=strict_sim", *_data(LONG)])
    check_training_config(cfg)
    preds = _prediction_frame(generate_bars(**LONG).collect(), every=60)
    # run_fold: build(cfg.backtest).run(frame)
    result = build(cfg.backtest).run(preds)
    assert result.returns.columns == ["ts", "gross", "cost", "net"] and np.isfinite(result.sharpe)
    assert result.details()["violations"] == 0.0 and result.details()["fills"] > 0
    # the end of train(): CPCV path returns against buy-and-hold with the same backtester, then the statistics
    splitter = CombinatorialPurgedKFold(n_groups=2, n_test_groups=1, purge_days=0, embargo_days=0)
    t = preds["ts"].to_numpy()
    groups = splitter.groups(np.unique(t))
    fold_of = pl.DataFrame({"ts": np.unique(t), "fold": groups.astype(np.int32)})
    folds = preds.drop("fold").join(fold_of, on="ts").with_columns(pl.lit(1.0).alias("baseline:buy_and_hold"))
    returns = path_returns(folds, splitter, t, [0, 1], build(cfg.backtest))
    assert set(returns["strategy"]) == {"model", "buy_and_hold"}
    evidence = evaluate_paths(returns, "buy_and_hold", Trials(n=1, sr_variance=0.0, source="config"),
                              StatsSettings(bootstrap_reps=20))
    assert np.isfinite(evidence.metrics["oos/sharpe"])
    assert isinstance(build(compose_train([]).backtest), SignalBacktest)  # the daily default is untouched


def test_daily_signals_are_refused_with_the_fix(month):
    daily = pl.DataFrame({"ts": [datetime(2024, 1, 3)], "symbol": ["SP500"], "signal": [1.0]})
    with pytest.raises(DataError, match="daily"):
        StrictSimBacktest(month).run(daily.with_columns(pl.col("ts").cast(pl.Datetime("us"))))
    elsewhere = pl.DataFrame({"ts": [datetime(2024, 1, 3, 10)], "symbol": ["XYZ"], "signal": [1.0]})
    with pytest.raises(DataError, match="data=synthetic_intraday"):
        StrictSimBacktest(month).run(elsewhere.with_columns(pl.col("ts").cast(pl.Datetime("us"))))
    with pytest.raises(DataError, match="quotes"):  # the bundled daily data as the market: no quotes
        build(compose_train(["backtest=strict_sim"]).backtest).run(
            elsewhere.with_columns(pl.col("ts").cast(pl.Datetime("us"))))
    with pytest.raises(ConfigError, match="capital"):
        StrictSimBacktest(month, capital=-1.0)
    with pytest.raises(ConfigError, match="slippage"):
        check_training_config(compose_train(["backtest=strict_sim", "backtest.costs.slippage=cubic"]))


def _data(params: dict) -> list[str]:
    return ["data=synthetic_intraday", *(f"data.source.{k}={v}" for k, v in params.items())]


def _replay_cfg(tmp_path, out, overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="replay", overrides=[
            f"logger.mlflow.tracking_uri=sqlite:///{tmp_path}/mlruns.db",
            f"logger.mlflow.artifact_location={tmp_path}/mlartifacts", *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / out)
        cfg.paths.root_dir = str(tmp_path)
    return cfg


@pytest.mark.slow
def test_replay_cli_reads_a_training_runs_predictions_and_logs_the_result(tmp_path, week):
    preds = _prediction_frame(week)
    path = tmp_path / "oos_predictions.parquet"
    preds.write_parquet(path)
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlruns.db")
    exp = client.create_experiment("train", artifact_location=(tmp_path / "mlartifacts").as_uri())
    source = client.create_run(exp).info.run_id
    client.log_artifact(source, str(path))
    trained = tmp_path / "config.yaml"  # the training run's resolved config: replay on its data
    data = OmegaConf.to_container(compose_train(_data(WEEK)).data, resolve=True)
    trained.write_text(OmegaConf.to_yaml({"data": data}))
    client.log_artifact(source, str(trained))

    metrics = replay_main(_replay_cfg(tmp_path, "out", [f"run_id={source}"]))
    assert metrics["bt/violations"] == 0 and metrics["bt/fills"] > 0
    runs = client.search_runs([client.get_experiment_by_name("backtest").experiment_id])
    assert len(runs) == 1 and runs[0].data.tags["source.run_id"] == source
    assert runs[0].data.tags["data.synthetic"] == "True"
    names = {a.path for d in ("plots", "backtest") for a in client.list_artifacts(runs[0].info.run_id, d)}
    assert {"plots/equity.png", "plots/drawdown.png", "plots/exposure.png", "backtest/violation_report.csv",
            "backtest/orders.parquet"} <= names
    assert client.list_artifacts(runs[0].info.run_id, "book_a")[0].path == "book_a/book_a_attribution.parquet"
    assert abs(metrics["book_a/max_abs_net_delta"]) <= 0.5 and metrics["book_a/residual_share"] < 0.2
    alone = tmp_path / "alone"
    alone.mkdir()
    preds.write_parquet(alone / "oos_predictions.parquet")  # no config.yaml beside it: data from overrides
    same = replay_main(_replay_cfg(tmp_path, "again", [f"predictions={alone / 'oos_predictions.parquet'}",
                                                       "plots=false", "options.enabled=false", *_data(WEEK)]))
    assert same["bt/sharpe"] == pytest.approx(metrics["bt/sharpe"])
    crash_week = {**WEEK, "seed": 19}  # SYN000 falls 18% on 2024-01-04
    rules = replay_main(_replay_cfg(tmp_path, "adversarial", ["adversarial=true", "plots=false",
                                                              *_data(crash_week)]))
    assert rules["bt/violations"] == 0 and rules["bt/rejections"] > 0
    with pytest.raises(ConfigError, match="exactly one"):
        replay_main(_replay_cfg(tmp_path, "none", []))
    with pytest.raises(DataError, match="run_id"):
        replay_main(_replay_cfg(tmp_path, "bad", ["run_id=0123456789abcdef"]))


@pytest.mark.slow
def test_a_training_run_evaluated_by_strict_sim_replays_to_the_same_result(tmp_path):
    from dualhrq.train import train
    from tests.e2e.conftest import assert_catalogue_matches, compose_tiny, runs_of

    data = ["data=synthetic_intraday", "data.source.start=2024-01-02", "data.source.n_symbols=2",
            "data.source.n_days=75", "validation.folds=[0]"]
    cfg = compose_tiny(tmp_path, [*data, "backtest=strict_sim", "task_name=sim"])
    train(cfg)
    (run,) = runs_of(tmp_path, "sim")
    assert run.data.metrics["fold0-sim/violations"] == 0 and run.data.metrics["fold0-sim/fills"] > 0
    assert_catalogue_matches(run, cfg)  # the rule engine's counts are in the catalogue of run metrics
    cfg = _replay_cfg(tmp_path, "replay", [f"run_id={run.info.run_id}", "plots=false", "options.enabled=false"])
    replayed = replay_main(cfg)  # the data section comes from the run's config.yaml
    assert replayed["bt/sharpe"] == pytest.approx(run.data.metrics["oos/sharpe"])
