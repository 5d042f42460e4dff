"""The planted-signal market: its stated model, and the closed-form Sharpe bound against a large simulation."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from dualhrq.data.planted import PlantedMarket
from dualhrq.errors import ConfigError
from dualhrq.market.backtest import SignalBacktest

T = 60_000


def replay(bars: pl.DataFrame, position: pl.Expr) -> float:
    """Annualised Sharpe of ``position`` (from bars up to t) held over (t, t+1], by the daily backtest at no cost."""
    frame = (bars.sort("symbol", "ts")
             .with_columns(r=(pl.col("close") / pl.col("close").shift(1) - 1).over("symbol"))
             .with_columns(signal=position.over("symbol"),
                           next_return=(pl.col("close").shift(-1) / pl.col("close") - 1).over("symbol"))
             .drop_nulls())
    return SignalBacktest(cost_bps=0.0).run(frame).sharpe


@pytest.fixture(scope="module")
def big():
    market = PlantedMarket(n_symbols=2, n_days=T, edge=0.002, volatility=0.01, seed=11)
    return market, market()


def test_bound_worked_by_hand():
    # sqrt(N * 252) * a / sigma: sqrt(2 * 252) * 0.2 = 4.4900; one symbol at a / sigma = 0.5: sqrt(252) / 2
    assert PlantedMarket(n_symbols=2, edge=0.002, volatility=0.01).sharpe_bound(252) == pytest.approx(4.489989, 1e-6)
    assert PlantedMarket(n_symbols=1, edge=0.005, volatility=0.01).sharpe_bound(252) == pytest.approx(7.937254, 1e-6)


def test_returns_follow_the_stated_model(big):
    _, bars = big
    for _, one in bars.group_by("symbol"):
        close = one.sort("ts")["close"].to_numpy()
        r = close[1:] / close[:-1] - 1
        x, y = np.sign(r[:-1]), r[1:]
        slope = np.mean(x * y)  # E[R(t+1) sign R(t)] = a, since sign^2 = 1
        assert slope == pytest.approx(0.002, abs=4 * 0.01 / math.sqrt(len(y)))
        assert np.std(y - 0.002 * x) == pytest.approx(0.01, rel=0.02)


def test_the_oracle_reaches_the_bound_and_other_rules_stay_below(big):
    market, bars = big
    bound = market.sharpe_bound(252)
    per_day = bound / math.sqrt(252)
    se = math.sqrt((1 + per_day**2 / 2) / T) * math.sqrt(252)  # standard error of an annualised Sharpe estimate
    assert replay(bars, pl.col("r").sign()) == pytest.approx(bound, abs=4 * se)
    # a linear rule and a two-day sign rule are F_t-measurable too, and cannot beat the bound
    assert replay(bars, (pl.col("r") / 0.03).clip(-1, 1)) < bound - 4 * se
    assert replay(bars, (pl.col("r") + pl.col("r").shift(1)).sign()) < bound - 4 * se


def test_symbols_are_independent_and_the_market_is_seeded():
    bars = PlantedMarket(n_days=3000, seed=5)()
    r = bars.sort("symbol", "ts").with_columns(r=(pl.col("close") / pl.col("close").shift(1) - 1).over("symbol"))
    wide = r.pivot(on="symbol", index="ts", values="r").drop_nulls()
    assert abs(np.corrcoef(wide["PLANTED0"], wide["PLANTED1"])[0, 1]) < 4 / math.sqrt(3000)
    assert bars.equals(PlantedMarket(n_days=3000, seed=5)())
    assert not bars.equals(PlantedMarket(n_days=3000, seed=6)())
    assert bars["ts"].dt.weekday().max() <= 5  # Monday..Friday


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"volatility": 0.0}, r"^volatility must be a number in \(0.0, 0.05\]"),
    ({"edge": -0.001}, r"^edge must be a number in \[0.0, 0.05\]"),
    ({"n_days": 2}, r"^n_days must be an integer in \[3, 100000\]"),
    ({"start": "03/01/2000"}, r"^start='03/01/2000' is not an ISO date"),
])
def test_impossible_settings_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        PlantedMarket(**kwargs)
