"""The strict simulator with pre-trade limits and the kill switch: Book B's decisions checked, the replay guarded."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from dualhrq.config import build, check_arguments, compose_train
from dualhrq.data.synthetic import generate_bars
from dualhrq.errors import ConfigError
from dualhrq.portfolio.book_b import EquityBook
from dualhrq.portfolio.strict_sim import RISK_COUNTS, StrictSimBacktest
from dualhrq.risk.killswitch import KillSwitch
from dualhrq.risk.limits import PreTradeLimits

WEEK = dict(n_symbols=3, start="2024-01-02", n_days=5, seed=19)  # SYN000 falls 18% on 2024-01-04
LEVERED = EquityBook(vol_target=2.0, max_weight=0.5)  # every symbol at 50% of the capital: 150% gross, long


@pytest.fixture(scope="module")
def crash_week():
    return generate_bars(**WEEK).collect()


def _long(bars: pl.DataFrame) -> pl.DataFrame:
    """Long every symbol, a new decision every 30 minutes from the second day on."""
    return (bars.filter(pl.col("ts").dt.minute() % 30 == 0).select("ts", "symbol", signal=pl.lit(1.0))
            .filter(pl.col("ts").dt.date() > pl.date(2024, 1, 2)))


def test_the_kill_switch_flattens_the_levered_book_in_the_crash_and_resumes_the_next_session(crash_week):
    switch = KillSwitch(daily_loss=0.03, drawdown=0.15, reset_days=1, alert_levels=(0.05, 0.10))
    result = StrictSimBacktest(crash_week, book=LEVERED, kill_switch=switch).run(_long(crash_week))
    rec, trips = result.replay, result.trips
    assert trips.height >= 1 and trips["limit"][0] == "daily_loss" and (trips["loss"] >= 0.03).all()
    ts = rec.grid.bar_ts
    for trip in trips.iter_rows(named=True):
        breach = int(np.searchsorted(ts, np.datetime64(trip["ts"])))
        flat = breach + trip["bars_to_flat"]
        assert rec.position[breach].any() and not rec.position[flat].any()  # flat at the recorded bar ...
        assert rec.position[breach:flat].any(axis=1).all()  # ... and not before it
        end = ts.size if trip["resume_ts"] is None else int(np.searchsorted(ts, np.datetime64(trip["resume_ts"])))
        assert rec.halted[breach + 1:end].all() and not rec.halted[breach]
        assert not rec.position[flat:end].any()  # halted: the standing long targets are ignored
        if trip["resume_ts"] is not None:  # the first bar of the next session
            assert end == rec.grid.day_start[rec.grid.day[breach] + 1]
    # the breach bar's day loss, recomputed from the per-step P&L: equity at the day's open less equity then
    steps = rec.per_step().with_columns(day=pl.Series(rec.grid.day), equity=1_000_000.0 + pl.col("pnl").cum_sum())
    first = int(np.searchsorted(ts, np.datetime64(trips["ts"][0])))
    d = rec.grid.day[first]
    opened = steps["equity"][int(rec.grid.day_start[d]) - 1]
    assert trips["loss"][0] == pytest.approx((opened - steps["equity"][first]) / 1_000_000.0)
    details = result.details()
    assert details["killswitch_trips"] == trips.height and details["violations"] == 0
    assert details["killswitch_bars_to_flat"] == trips["bars_to_flat"].max()
    assert details["killswitch_alerts"] == result.alerts.height


def test_a_position_limit_below_the_books_weight_refuses_every_decision(crash_week):
    predictions = _long(crash_week)
    limits = PreTradeLimits(max_position=0.3)  # the book asks for 50% per symbol
    result = StrictSimBacktest(crash_week, book=LEVERED, limits=limits).run(predictions)
    # each request of the book (its shares at a decision, 50% of the capital or less where volatility is high)
    # is refused until the next different one replaces it: one rejection per change of the requested shares,
    # valued at the decision bar's mid
    grid = result.replay.grid
    book = LEVERED.targets(predictions, grid, 1_000_000.0)
    rows = np.searchsorted(grid.bar_ts, predictions["ts"].to_numpy())
    cols = np.searchsorted(np.asarray(grid.symbols), predictions["symbol"].to_numpy())
    asked = (predictions.select("ts", "symbol").with_columns(shares=book[rows, cols], mid=grid.mid[rows, cols])
             .sort("symbol", "ts")
             .filter(pl.col("shares") != pl.col("shares").shift(1).over("symbol").fill_null(0.0)))
    assert result.rejections.select("ts", "symbol").sort("symbol", "ts").equals(asked.select("ts", "symbol"))
    assert set(result.rejections["limit"]) == {"max_position"}
    value = asked.select(pl.col("shares") * pl.col("mid") / 1_000_000.0)["shares"]
    assert result.rejections.sort("symbol", "ts")["value"].to_numpy() == pytest.approx(value.to_numpy(), rel=1e-12)
    assert (value > 0.3).all()
    # every bar from a symbol's first decision on is refused: the rejections' bars add up to them
    first = np.searchsorted(grid.bar_ts, predictions.group_by("symbol").agg(pl.col("ts").min())["ts"].to_numpy())
    assert result.rejections["bars"].sum() == int((grid.shape[0] - first).sum())
    assert not result.replay.fill.any() and not result.replay.position.any()
    details = result.details()
    assert details["pretrade_rejections"] == details["pretrade_max_position"] == asked.height


def test_the_configured_defaults_run_and_count_every_risk_figure(crash_week):
    cfg = compose_train(["backtest=strict_sim", "data=synthetic_intraday"])
    check_arguments(cfg.backtest)
    sim = build(cfg.backtest, market=crash_week)
    assert sim.limits.max_gross == 1.0 and sim.kill_switch.daily_loss == 0.03
    assert sim.kill_switch.capital == sim.capital
    result = sim.run(_long(crash_week))
    assert set(RISK_COUNTS) <= set(result.details()) and result.details()["violations"] == 0
    # the replay traded the checked targets: what the limits make of the book's own
    grid = result.replay.grid
    book = sim.book.targets(_long(crash_week), grid, sim.capital)
    checked = sim.limits.check(book, grid.mid, grid.day, grid.volume, sim.capital)
    np.testing.assert_array_equal(result.replay.target, checked.target)
    plain = StrictSimBacktest(crash_week).run(_long(crash_week))
    assert plain.rejections.height == 0 and plain.trips.height == 0
    assert all(plain.details()[k] == 0 for k in RISK_COUNTS)


def test_the_kill_switch_and_the_backtest_share_one_capital(crash_week):
    assert StrictSimBacktest(crash_week, capital=2e6, kill_switch=KillSwitch()).kill_switch.capital == 2e6
    with pytest.raises(ConfigError, match=r"^kill_switch\.capital must be the backtest's capital \(2000000\.0\)"):
        StrictSimBacktest(crash_week, capital=2e6, kill_switch=KillSwitch(capital=1e6))
    with pytest.raises(ConfigError, match=r"^capital must be a finite positive number to measure losses against, "
                                          r"got None\. Fix: set it"):
        KillSwitch().guard(np.zeros(3, dtype=int))
    with pytest.raises(ConfigError, match=r"^backtest\.kill_switch\.daily_loss must be a number in \(0, 1\)"):
        build(compose_train(["backtest=strict_sim", "backtest.kill_switch.daily_loss=1.5"]).backtest)
    with pytest.raises(ConfigError, match=r"^backtest\.limits\.max_gross must be a finite positive number"):
        build(compose_train(["backtest=strict_sim", "backtest.limits.max_gross=0"]).backtest)
