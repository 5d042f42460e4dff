"""The kill switch: trips on hand-built crashes and not on calm markets, flattens through the rules, resets."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from dualhrq.errors import ConfigError
from dualhrq.market.audit import recompute
from dualhrq.market.costs import CostModel
from dualhrq.market.engine import replay
from dualhrq.market.grid import build_grid
from dualhrq.risk.killswitch import KillSwitch, alerts_frame, trips_frame
from tests.market.conftest import bars

FREE = CostModel(slippage="none", commission_per_share=0.0, borrow_bps=0.0)
CAPITAL = 1_000_000.0
SHARES = 5_000.0  # $500,000 at $100: half the capital


def _market(*sessions: np.ndarray) -> pl.DataFrame:
    """A prior close of $100 (2024-03-04), a quiet end of day at $100 on 2024-03-05 where the book is built,
    then one session per close path from 2024-03-06 on (09:30, one-minute bars, 100,000 shares a bar)."""
    days = ["2024-03-06", "2024-03-07", "2024-03-08", "2024-03-11", "2024-03-12"]
    frames = [bars("2024-03-04", [100.0], start="15:59"),
              bars("2024-03-05", np.full(10, 100.0), start="15:50", volume=100_000.0)]
    frames += [bars(day, closes, start="09:30", volume=100_000.0) for day, closes in zip(days, sessions)]
    return pl.concat(frames)


def _held(grid, shares: float) -> np.ndarray:
    """A book that asks for ``shares`` from the first bar of 2024-03-05 on."""
    target = np.full((grid.shape[0], 1), shares)
    target[0] = 0.0
    return target


CRASH = np.round(100.0 * 0.999 ** np.arange(390), 2)  # -0.1% a minute: $100 -> $67.7 within the session (-32%)
CALM = np.round(100.0 + 0.2 * np.sin(np.arange(390) / 7.0), 2)  # +/- 0.2%


def test_a_long_book_trips_on_a_crash_and_is_flat_the_next_bar():
    grid = build_grid(_market(CRASH))
    guard = KillSwitch(daily_loss=0.03, drawdown=0.15, capital=CAPITAL).guard(grid.day)
    rec = replay(grid, _held(grid, SHARES), FREE, guard=guard)
    # bought 5,000 at the ask 100.01 the day before; the day opens marked at $100, so the day's loss at a mid m
    # is 5,000 (100 - m) / 1,000,000: the first crash bar at or below $94.00 trips the 3% limit
    start = int(grid.day_start[2])
    k = int(np.argmax(SHARES * (100.0 - CRASH) >= 0.03 * CAPITAL))
    (trip,) = guard.trips
    assert (trip.bar, trip.limit) == (start + k, "daily_loss")
    assert trip.loss == pytest.approx(SHARES * (100.0 - CRASH[k]) / CAPITAL)
    # halted from the next bar: sold at the bid within the cap (10% of 100,000 shares), flat one bar later
    assert trip.flat_bar == trip.bar + 1
    assert rec.position[trip.bar, 0] == SHARES and rec.position[trip.flat_bar:, 0].tolist() == [0.0] * (
        grid.shape[0] - trip.flat_bar)
    assert rec.fill[trip.flat_bar, 0] == -SHARES and rec.price[trip.flat_bar, 0] == CRASH[k + 1] - 0.01
    assert not rec.halted[:trip.bar + 1].any() and rec.halted[trip.bar + 1:].all()  # no reset: to the end
    frame = trips_frame(guard.trips, grid.bar_ts)
    assert frame.row(0, named=True)["bars_to_flat"] == 1 and frame["resume_ts"].is_null().all()
    assert frame["halted_bars"].item() == grid.shape[0] - trip.bar - 1
    assert recompute(rec).violations.height == 0


def test_a_calm_market_never_trips_and_the_replay_is_the_unguarded_one():
    grid = build_grid(_market(CALM, CALM))
    guard = KillSwitch(daily_loss=0.03, drawdown=0.15, capital=CAPITAL).guard(grid.day)
    guarded = replay(grid, _held(grid, SHARES), FREE, guard=guard)
    plain = replay(grid, _held(grid, SHARES), FREE)
    # at worst 5,000 x $0.40 from top to bottom plus the $50 spread: 0.2% of the capital
    assert (SHARES * (CALM.max() - CALM.min()) + 50.0) / CAPITAL < 0.003
    assert guard.trips == [] and not guarded.halted.any()
    np.testing.assert_array_equal(guarded.position, plain.position)
    np.testing.assert_array_equal(guarded.equity, plain.equity)


def test_the_drawdown_limit_trips_on_the_crash_when_the_daily_limit_is_off():
    grid = build_grid(_market(CRASH))
    guard = KillSwitch(daily_loss=None, drawdown=0.15, alert_levels=(0.05, 0.10), capital=CAPITAL).guard(grid.day)
    replay(grid, _held(grid, SHARES), FREE, guard=guard)
    # the peak is the capital (the book never gained); equity = capital - $50 spread - 5,000 (100 - mid)
    start = int(grid.day_start[2])
    loss = (50.0 + SHARES * (100.0 - CRASH)) / CAPITAL
    first = {level: start + int(np.argmax(loss >= level)) for level in (0.05, 0.10, 0.15)}
    assert [(t.bar, t.limit) for t in guard.trips] == [(first[0.15], "drawdown")]
    assert guard.alerts == [(first[0.05], 0.05), (first[0.10], 0.10)]
    assert alerts_frame(guard.alerts, grid.bar_ts)["level"].to_list() == [0.05, 0.10]


def test_a_short_book_under_rule_201_is_bought_back_flat():
    """A crash is a gain for a short book; what trips it inside the Rule 201 restriction the crash set off is
    the rebound after it. Covering is a buy, which Rule 201 does not restrict, so the book gets flat."""
    down = np.round(100.0 * 0.999 ** np.arange(130), 2)  # -12%: the restriction holds from the -10% bar on
    up = np.round(down[-1] * 1.001 ** np.arange(1, 200), 2)
    grid = build_grid(_market(np.r_[down, up]))
    guard = KillSwitch(daily_loss=None, drawdown=0.05, capital=CAPITAL).guard(grid.day)
    rec = replay(grid, _held(grid, -SHARES), FREE, guard=guard)
    (trip,) = guard.trips
    # sold short at the bid 99.99; the peak equity is at the low, then the rebound takes back 5% of it
    equity = CAPITAL - 50.0 + SHARES * (100.0 - np.r_[down, up])
    peak = np.maximum.accumulate(equity)
    assert trip.bar == int(grid.day_start[2]) + int(np.argmax((peak - equity) / peak >= 0.05))
    assert trip.bar >= int(grid.day_start[2]) + 130  # on the rebound
    assert rec.rules.ssr[trip.bar:trip.flat_bar + 1, 0].all()  # the whole way under Rule 201
    assert trip.flat_bar == trip.bar + 1 and rec.fill[trip.flat_bar, 0] == SHARES
    assert rec.position[trip.flat_bar:, 0].max() == 0.0 and rec.position[trip.flat_bar:, 0].min() == 0.0
    assert recompute(rec).violations.height == 0


def test_trading_resumes_at_the_first_bar_of_the_configured_session_and_not_before():
    quiet = np.full(20, 70.0)
    grid = build_grid(_market(CRASH, quiet, quiet, quiet))
    guard = KillSwitch(daily_loss=0.03, drawdown=None, reset_days=2, capital=CAPITAL).guard(grid.day)
    rec = replay(grid, _held(grid, SHARES), FREE, guard=guard)
    (trip,) = guard.trips
    resume = int(grid.day_start[4])  # the trip is in session 2 (2024-03-06); two sessions on: 2024-03-08
    assert trip.resume_bar == resume
    assert rec.halted[trip.bar + 1:resume].all() and not rec.halted[resume:].any()
    assert (rec.position[trip.flat_bar:resume, 0] == 0).all()  # 2024-03-07 stays flat though the book asks
    assert rec.position[resume, 0] == SHARES  # the standing target is taken at the reset bar
    assert not rec.halted[:trip.bar + 1].any()


def _guard(switch: KillSwitch, pnl, day=None):
    day = np.zeros(len(pnl), dtype=int) if day is None else np.asarray(day)
    guard = switch.guard(day)
    halted = [guard.update(t, p, flat=False) for t, p in enumerate(pnl)]
    return guard, halted


@pytest.mark.parametrize("peak_pnl", [0.0, 200_000.0])
def test_a_drawdown_exactly_at_the_limit_trips_and_a_cent_less_does_not(peak_pnl):
    switch = KillSwitch(daily_loss=None, drawdown=0.15, capital=CAPITAL)
    peak = CAPITAL + peak_pnl
    at_limit = peak * 0.85 - CAPITAL  # equity 15% below the peak: 850,000 or 1,020,000, exact in binary
    assert (peak - (CAPITAL + at_limit)) / peak == 0.15
    guard, halted = _guard(switch, [peak_pnl, at_limit + 0.01, at_limit])
    assert halted == [False, False, True] and [(t.bar, t.limit) for t in guard.trips] == [(2, "drawdown")]
    assert guard.trips[0].loss == 0.15


def test_a_daily_loss_exactly_at_the_limit_trips_and_counts_from_the_day_open():
    switch = KillSwitch(daily_loss=0.03, drawdown=None, capital=CAPITAL)
    # day 0 loses $29,999 (no trip); day 1 opens at that equity, loses $29,999.99 more (no trip), then exactly
    # $30,000 (trips): 3% of the capital from the day's open, though 6% from the start
    guard, halted = _guard(switch, [-29_999.0, -59_998.99, -59_999.0], day=[0, 1, 1])
    assert halted == [False, False, True] and guard.trips[0].loss == 0.03


def test_alerts_are_recorded_at_each_upward_crossing():
    switch = KillSwitch(daily_loss=None, drawdown=0.5, alert_levels=(0.05, 0.10), capital=CAPITAL)
    guard, halted = _guard(switch, [0.0, -50_000.0, -120_000.0, -40_000.0, -60_000.0])
    assert guard.alerts == [(1, 0.05), (2, 0.10), (4, 0.05)] and not any(halted)  # 4%: re-armed; 6%: again


def test_after_a_reset_the_drawdown_counts_from_the_equity_at_the_reset():
    switch = KillSwitch(daily_loss=None, drawdown=0.10, reset_days=1, capital=CAPITAL)
    guard, halted = _guard(switch, [0.0, -100_000.0, -100_000.0, -150_000.0, -190_000.0],
                           day=[0, 0, 0, 1, 1])
    # trips at bar 1 (10%); resumes at bar 3 with the peak at $900,000: -5.6% there, -10% at bar 4 trips again
    assert [t.bar for t in guard.trips] == [1, 4] and [t.resume_bar for t in guard.trips] == [3, None]
    assert halted == [False, True, False, False, True]


def test_a_guard_serves_one_replay_in_order():
    guard = KillSwitch(capital=CAPITAL).guard(np.zeros(3, dtype=int))
    guard.update(0, 0.0, True)
    with pytest.raises(ValueError, match="expected bar 1"):
        guard.update(0, 0.0, True)


@pytest.mark.parametrize("kwargs,message", [
    ({"daily_loss": 1.0}, r"^daily_loss must be a number in \(0, 1\) or null, got 1\.0\.$"),
    ({"daily_loss": 0.0}, r"^daily_loss must be a number in \(0, 1\) or null, got 0\.0\.$"),
    ({"drawdown": -0.1}, r"^drawdown must be a number in \(0, 1\) or null, got -0\.1\.$"),
    ({"reset_days": 0}, r"^reset_days must be a positive integer or null, got 0\.$"),
    ({"capital": 0.0}, r"^capital must be a finite positive number or null, got 0\.0\.$"),
    ({"alert_levels": (0.05, 0.2)}, r"^alert_levels must be drawdown fractions in \(0, 0\.15\) .* got \[0\.05, 0\.2\]"),
    ({"alert_levels": (0.10, 0.05)}, r"^alert_levels must be strictly ascending, got \[0\.1, 0\.05\]\.$"),
])
def test_bad_settings_are_refused_with_one_message(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        KillSwitch(**kwargs)


def test_a_guard_that_never_halts_leaves_every_array_of_the_replay_as_without_one():
    """The eventful market of the engine's tests, random targets, transient impact, cancelled remainders: a
    kill switch without limits is asked after every bar and never halts, and nothing else changes."""
    from dualhrq.data.synthetic import MarketParams, generate_bars
    from dualhrq.market.engine import Execution

    grid = build_grid(generate_bars(n_symbols=4, start="2024-01-02", n_days=2, seed=1,
                                    params=MarketParams(crash_rate=0.3, spike_rate=0.6)))
    rng = np.random.default_rng(0)
    target = np.round(rng.normal(0, 300, grid.shape)) * (rng.random(grid.shape) < 0.3)
    target[rng.random(grid.shape) < 0.5] = np.nan
    costs = CostModel(slippage="exp_decay", impact_coef=0.5, decay_s=120.0)
    plain = replay(grid, target, costs, Execution(remainder="cancel"))
    asked = []

    class Watched:
        inner = KillSwitch(daily_loss=None, drawdown=None, alert_levels=(0.5,), capital=CAPITAL).guard(grid.day)

        def update(self, step: int, pnl: float, flat: bool) -> bool:
            asked.append(step)
            return self.inner.update(step, pnl, flat)

    guarded = replay(grid, target, costs, Execution(remainder="cancel"), guard=Watched())
    assert asked == list(range(grid.shape[0])) and not guarded.halted.any()
    for name in ("order", "fill", "marketable", "passive", "short_fill", "price", "limit_price", "quote_shift",
                 "reason", "position", "spread_cost", "impact_cost", "commission", "borrow", "equity"):
        np.testing.assert_array_equal(getattr(guarded, name), getattr(plain, name), err_msg=name)
    assert (plain.fill != 0).any() and (plain.passive != 0).any()
