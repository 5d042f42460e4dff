"""Baseline signals: the momentum rule by hand, buy-and-hold, another MLflow run's signals, bad config."""

from datetime import datetime, timedelta

import polars as pl
import pytest
from mlflow.tracking import MlflowClient

from dualhrq.errors import ConfigError, DataError
from dualhrq.validation.baselines import add_baseline_signals, baseline_names, momentum_signal

DAYS = [datetime(2024, 1, 1) + timedelta(days=i) for i in range(6)]


def _bars():
    return pl.DataFrame({"ts": DAYS * 2, "symbol": ["A"] * 6 + ["B"] * 6,
                         "close": [10.0, 11, 12, 11, 9, 9] + [5.0, 4, 3, 4, 5, 6]})


def _predictions(fold=0):
    return pl.DataFrame({"fold": [fold] * 12, "ts": DAYS * 2, "symbol": ["A"] * 6 + ["B"] * 6,
                         "signal": [0.5] * 12, "next_return": [0.01] * 12})


def test_momentum_is_the_sign_of_the_lookback_return_per_symbol():
    out = momentum_signal(_bars().reverse(), 2).sort("symbol", "ts")
    # A: 12/10 up, 11/11 flat, 9/12 down, 9/11 down; B: 3/5 down, 4/4 flat, 5/3 up, 6/4 up
    assert out["signal"].to_list() == [0, 0, 1, 0, -1, -1] + [0, 0, -1, 0, 1, 1]


def test_buy_and_hold_and_momentum_columns_are_added():
    cfg = {"primary": "buy_and_hold", "momentum": {"lookback": 2}, "runs": {}}
    out = add_baseline_signals(_predictions(), cfg, _bars(), None).sort("symbol", "ts")
    assert out["baseline:buy_and_hold"].to_list() == [1.0] * 12
    assert out["baseline:momentum"].to_list() == [0, 0, 1, 0, -1, -1, 0, 0, -1, 0, 1, 1]
    assert out["signal"].to_list() == [0.5] * 12  # the model's own signal untouched


def test_another_runs_signals_are_matched_fold_by_fold(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns.db")
    exp = client.create_experiment("b", artifact_location=str(tmp_path / "art"))
    run = client.create_run(exp).info.run_id
    other = _predictions().with_columns(signal=pl.Series([-1.0, 1.0] * 6))
    other.write_parquet(tmp_path / "oos_predictions.parquet")
    client.log_artifact(run, str(tmp_path / "oos_predictions.parquet"))
    cfg = {"primary": "none_run", "momentum": None, "runs": {"none_run": run}}
    assert baseline_names(cfg) == ["buy_and_hold", "none_run"]
    out = add_baseline_signals(_predictions(), cfg, _bars(), client)
    assert out["baseline:none_run"].to_list() == other["signal"].to_list()
    with pytest.raises(DataError, match="none_run"):  # a run cut into other folds cannot be matched
        add_baseline_signals(_predictions(fold=1), cfg, _bars(), client)
    with pytest.raises(ConfigError, match=r"validation\.baselines\.runs\.none_run"):
        add_baseline_signals(_predictions(), {**cfg, "runs": {"none_run": "0" * 32}}, _bars(), client)


@pytest.mark.parametrize("cfg,field", [
    ({"primary": "momentum", "momentum": None}, "validation.baselines.primary"),
    ({"primary": "buy_and_hold", "momentum": {"lookback": 0}}, "validation.baselines.momentum.lookback"),
    ({"primary": "buy_and_hold", "runs": {"momentum": "abc"}}, "validation.baselines.runs.momentum"),
    ({"primary": "buy_and_hold", "runs": {"x": 5}}, "validation.baselines.runs.x"),
    ({"primary": "buy_and_hold", "bogus": 1}, "unknown keys"),
])
def test_bad_baseline_config_names_the_field(cfg, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        baseline_names(cfg)


def test_baselines_are_read_at_the_given_path():
    with pytest.raises(ConfigError, match=r"^b\.momentum\.lookback must be a positive integer, got 1\.5\."):
        baseline_names({"primary": "buy_and_hold", "momentum": {"lookback": 1.5}}, "b")
    with pytest.raises(ConfigError, match=r"^b\.runs\.other: reading another run's predictions needs"):
        add_baseline_signals(_predictions(), {"primary": "other", "runs": {"other": "abc"}}, _bars(), None, "b")


def _panel():
    """Six symbols, four days; day 3 has every history, day 2 lacks F's (F starts later)."""
    closes = {  # day 0, 1, 2, 3
        "A": [10.0, 20, 99, 1], "B": [10.0, 15, 1, 1], "C": [10.0, 12, 1, 99], "D": [10.0, 9, 1, 1],
        "E": [10.0, 8, 1, 1], "F": [None, 10.0, 50, 1],
    }
    rows = [(DAYS[d], s, c[d]) for s, c in closes.items() for d in range(4) if c[d] is not None]
    return pl.DataFrame(rows, schema=["ts", "symbol", "close"], orient="row")


def test_cross_sectional_momentum_ranks_the_lookback_to_skip_return_by_hand():
    from dualhrq.validation.baselines import CrossSectionalMomentum, cross_sectional_momentum_signal

    rule = CrossSectionalMomentum(lookback=2, skip=1, fraction=1 / 3)
    out = cross_sectional_momentum_signal(_panel(), rule)
    signal = {(r["symbol"], r["ts"]): r["signal"] for r in out.iter_rows(named=True)}
    # day 2 ranks ln(close[1] / close[0]) over A..E (F has no day-0 close): A 2.0, B 1.5, C 1.2, D 0.9, E 0.8;
    # scaled ranks 1, .75, .5, .25, 0: long A and B (>= 2/3), short D and E (<= 1/3); the day's own close
    # (99, 1, 1, ...) plays no part
    assert [signal[(s, DAYS[2])] for s in "ABCDEF"] == [1, 1, 0, -1, -1, 0]
    # day 3 ranks ln(close[2] / close[1]): A 99/20, B 1/15, C 1/12, D 1/9, E 1/8, F 50/10: ranks A 1,
    # F .8, E .6, D .4, C .2, B 0: long A and F, short C and B
    assert [signal[(s, DAYS[3])] for s in "ABCDEF"] == [1, -1, -1, 0, 0, 1]
    assert all(signal[(s, DAYS[d])] == 0 for s in "ABCDE" for d in (0, 1))  # not enough history


def test_cross_sectional_momentum_holds_nothing_with_one_ranked_symbol_and_refuses_bad_rules():
    from dualhrq.validation.baselines import CrossSectionalMomentum, cross_sectional_momentum_signal

    one = _panel().filter(pl.col("symbol") == "A")
    assert cross_sectional_momentum_signal(one, CrossSectionalMomentum(lookback=2, skip=1))["signal"].abs().sum() == 0
    with pytest.raises(ConfigError, match="skip"):
        CrossSectionalMomentum(lookback=21, skip=21)
    with pytest.raises(ConfigError, match="fraction"):
        CrossSectionalMomentum(fraction=0.6)
    names = baseline_names({"primary": "xs_momentum", "xs_momentum": {"lookback": 252, "skip": 21}})
    assert names == ["buy_and_hold", "xs_momentum"]


INDEX = {"_target_": "dualhrq.data.sources.load_sp500_index", "_partial_": True}


def test_an_external_baseline_is_the_series_own_next_day_return():
    from skfolio.datasets import load_sp500_index

    from dualhrq.validation.baselines import external_returns

    cfg = {"primary": "index", "external": {"index": INDEX}}
    assert baseline_names(cfg) == ["buy_and_hold", "index"]
    (name, got), = external_returns(cfg).items()
    raw = load_sp500_index()["SP500"]
    expected = (raw.shift(-1) / raw - 1).to_numpy()  # the return held over (t, t+1], t+1 the next trading day
    assert name == "index" and got["ts"].to_list() == list(raw.index.to_pydatetime())
    assert got["next_return"].to_numpy()[:-1] == pytest.approx(expected[:-1], rel=1e-12)
    assert got["next_return"][-1] is None  # the last day's return is unknown
    assert external_returns({"primary": "buy_and_hold"}) == {}


@pytest.mark.parametrize("external, message", [
    ({"buy_and_hold": INDEX}, r"external\.buy_and_hold: give a new baseline name"),
    ({"index": "load_sp500_index"}, r"external\.index: give a new baseline name and a config node whose _target_"),
])
def test_an_external_baseline_must_be_a_loader_under_a_new_name(external, message):
    with pytest.raises(ConfigError, match=rf"^validation\.baselines\.{message}"):
        baseline_names({"primary": "buy_and_hold", "external": external})


def test_an_external_loader_must_give_positive_daily_closes():
    from dualhrq.validation.baselines import external_returns

    bad = {"_target_": "polars.DataFrame", "_partial_": True, "data": {"ts": [DAYS[0], DAYS[1]], "close": [1.0, -1.0]}}
    with pytest.raises(DataError, match=r"^validation\.baselines\.external\.idx: closes must be finite, positive"):
        external_returns({"primary": "buy_and_hold", "external": {"idx": bad}})
    wrong = {"_target_": "polars.DataFrame", "_partial_": True, "data": {"ts": [DAYS[0]], "price": [1.0]}}
    with pytest.raises(DataError, match=r"external\.idx: the loader must return a polars frame with columns ts, close"):
        external_returns({"primary": "buy_and_hold", "external": {"idx": wrong}})
