"""The portfolio replay (portfolio=dual_book): bad settings stop before any replay; a replay of signals on the
synthetic intraday market makes the three books, combines them and logs the risk layer's figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient
from omegaconf import open_dict

from dualhrq.config import CONF_DIR
from dualhrq.data.synthetic import generate_bars
from dualhrq.errors import ConfigError
from dualhrq.evaluation.replay import replay
from dualhrq.portfolio.strict_sim import StrictSimBacktest

MARKET = dict(n_symbols=3, start="2024-01-02", n_days=60, seed=0)
# a 60-day replay is too short for the defaults (fhs needs 250 days, historical 99% needs 100): the methods,
# levels and windows it can support
SHORT = ["risk.methods=[historical,normal]", "risk.method=normal", "risk.levels=[0.9,0.95]", "risk.horizons=[1]",
         "risk.backtest.level=0.95", "risk.backtest.method=normal", "risk.backtest.window=30",
         "portfolio.integrator.min_history=5", "portfolio.integrator.allocator.window=5",
         "portfolio.regime.min_history=5", "portfolio.regime.window=5", "risk.factors.min_obs=10"]


def _signals(days: int) -> pl.DataFrame:
    bars = generate_bars(**{**MARKET, "n_days": days}).collect()
    frame = bars.filter(pl.col("ts").dt.minute() % 30 == 0).select(
        "ts", "symbol", t1=pl.col("ts") + pl.duration(minutes=15))
    signal = np.tanh(np.random.default_rng(0).normal(size=frame.height))
    return frame.with_columns(fold=pl.lit(0, pl.Int32), signal=pl.Series(signal), forecast=0.0, target=0.0,
                              next_return=0.0).filter(pl.col("ts").dt.date() > pl.date(2024, 1, 3))


@pytest.fixture(scope="module")
def signals(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("signals") / "oos_predictions.parquet"
    _signals(MARKET["n_days"]).write_parquet(path)
    return path


def _cfg(tmp: Path, path: Path, overrides: list[str]):
    data = [f"data.source.{k}={v}" for k, v in MARKET.items()]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="replay", overrides=[
            f"logger.mlflow.tracking_uri=sqlite:///{tmp}/mlruns.db", f"logger.mlflow.artifact_location={tmp}/art",
            f"predictions={path}", "data=synthetic_intraday", *data, "portfolio=dual_book", "plots=false",
            *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp / "out")
        cfg.paths.root_dir = str(tmp)
    return cfg


@pytest.mark.parametrize(("override", "field"), [
    ("portfolio.integrator.regime_budgets.low_vol=[0.5,0.3,0.3]", "portfolio.integrator.regime_budgets.low_vol"),
    ("portfolio.integrator.regime_budgets.crisis=[0.5,0.5]", "portfolio.integrator.regime_budgets.crisis"),
    ("backtest.limits.max_gross=-1", "backtest.limits.max_gross"),
    ("risk.stress.scenarios=[gfc,tulips_1637]", "risk.stress.scenarios"),
    ("risk.levels=[0.95,1.5]", "risk.levels"),
    ("risk.backtest.level=0", "risk.levels"),
    ("risk.methods=[historical,garch]", "risk.methods"),
    ("risk.factors.kind=bayes", "risk.factors.kind"),
    ("portfolio.books=[hrm,book_c]", "portfolio.books"),
    ("portfolio.capital=-5", "portfolio.capital"),
])
def test_a_bad_setting_stops_before_any_replay_naming_the_field(tmp_path, signals, monkeypatch, override, field):
    def never(*_):
        raise AssertionError("the replay ran")
    monkeypatch.setattr(StrictSimBacktest, "run", never)
    with pytest.raises(ConfigError) as err:
        replay(_cfg(tmp_path, signals, [*SHORT, override]))
    assert str(err.value).startswith(field)
    assert not (tmp_path / "mlruns.db").exists()  # nothing logged


def test_book_b_needs_the_strict_simulator(tmp_path, signals):
    with pytest.raises(ConfigError, match=r"^portfolio.books: book_b needs intraday bars"):
        replay(_cfg(tmp_path, signals, [*SHORT, "backtest=daily"]))


def test_a_history_too_short_for_a_method_is_refused_before_the_replay(tmp_path, signals, monkeypatch):
    monkeypatch.setattr(StrictSimBacktest, "run", lambda *_: pytest.fail("the replay ran"))
    expected = r"^risk.methods: method 'historical' at level 0.99 and horizon 10 needs 109 days"
    with pytest.raises(ConfigError, match=expected):
        replay(_cfg(tmp_path, signals, []))


@pytest.mark.slow
def test_the_dual_book_replay_combines_the_books_and_logs_the_risk_layer(tmp_path, signals):
    metrics = replay(_cfg(tmp_path, signals, SHORT))
    out = tmp_path / "out" / "portfolio"
    books = pl.read_parquet(out / "book_returns.parquet")
    weights = pl.read_parquet(out / "portfolio_weights.parquet")
    combined = pl.read_parquet(out / "portfolio_returns.parquet")
    assert books.columns == ["ts", "hrm", "book_a", "book_b"]
    # each day's return is the weights in force times the books' returns, less the rebalancing cost
    joined = weights.join(books, on="ts", suffix="_r").join(combined, on="ts")
    by_hand = sum(joined[b] * joined[f"{b}_r"] for b in ("hrm", "book_a", "book_b")) - joined["cost"]
    np.testing.assert_allclose(joined["net"].to_numpy(), by_hand.to_numpy(), atol=1e-12)
    # Book B alone is the strict replay itself
    assert metrics["portfolio/book_b/sharpe"] == pytest.approx(metrics["bt/sharpe"])
    # the VaR backtest counts the days whose loss exceeded the forecast
    var = pl.read_parquet(out / "var_backtest.parquet").drop_nulls("var").filter(pl.col("var").is_not_nan())
    assert metrics["risk/var_exceedances"] == int((-var["net"] > var["var"]).sum())
    assert metrics["risk/var_backtest_days"] == var.height
    for key in ("risk/var_95", "risk/cvar_95", "risk/kupiec_pvalue", "risk/christoffersen_pvalue", "stress/gfc",
                "stress/covid", "stress/equity_down_20", "stress/vol_x2", "pretrade/rejections", "killswitch/trips",
                "execution/shortfall_bps", "risk/factor_share", "attribution/book_a"):
        assert np.isfinite(metrics[key]), key
    assert metrics["risk/cvar_95"] >= metrics["risk/var_95"] > 0
    assert metrics["killswitch/drill_tripped"] == 1 and metrics["gate/kill_switch_drill"] == 1
    assert metrics["gates/failed"] + metrics["gates/passed"] == 3
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlruns.db")
    (run,) = client.search_runs([client.get_experiment_by_name("backtest").experiment_id])
    names = {a.path for a in client.list_artifacts(run.info.run_id, "portfolio")}
    assert {"portfolio/risk_report.html", "portfolio/stress.csv", "portfolio/portfolio_weights.parquet"} <= names
    assert run.data.metrics["risk/var_95"] == pytest.approx(metrics["risk/var_95"])
