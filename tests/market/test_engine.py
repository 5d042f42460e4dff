"""Order checks, fills and costs of the vectorised replay; the violation audit; the per-bar loop twin."""

import dataclasses
from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from dualhrq.data.synthetic import MarketParams, generate_bars
from dualhrq.market.audit import daily_report, summary_line, violations
from dualhrq.market.costs import CostModel
from dualhrq.market.engine import BAND, OK, PAUSE, SSR, replay
from dualhrq.market.grid import build_grid
from dualhrq.market.loop import replay_loop

from .conftest import bars, with_prior_close

FREE = CostModel(slippage="none", commission_per_share=0.0, borrow_bps=0.0)


def _limit_down_then_pause():
    """Tier 1, prior close $50 (bands 47.50/52.50); offer at the lower band from 10:00:10 for 20 s."""
    asks = [50.01, 50.01, 47.50, 47.50, 47.50, 47.50, 50.01]
    day = bars("2021-03-01", np.full(7, 50.0), start="10:00", step_s=5, flat=True, trades=1,
               ask=asks, bid=[a - 0.02 for a in asks])
    return build_grid(with_prior_close(day, "2021-02-26", 50.0), bar=timedelta(0))


def test_orders_in_a_limit_state_and_a_pause_are_rejected_with_their_reason():
    grid = _limit_down_then_pause()
    # steps: prior, 10:00:00, :05, :10 (limit), :15 (limit), :20 (limit), :25 (limit), :30 (paused)
    target = np.array([np.nan, 100, 100, 0, 200, 200, 200, 300.0])[:, None]
    rec = replay(grid, target, FREE)
    # 10:00:10 sell 100 at bid 47.48 < lower band 47.50: rejected; 10:00:15 retry, same;
    # 10:00:20 buy 200 at the ask 47.50 = band: trades; 10:00:30 paused: rejected
    assert rec.reason[:, 0].tolist() == [OK, OK, OK, BAND, OK, OK, OK, PAUSE]
    assert rec.fill[:, 0].tolist() == [0, 100, 0, 0, 100, 0, 0, 0]
    assert rec.price[4, 0] == 47.50
    assert violations(rec).height == 0


def test_fill_prices_and_costs_by_hand():
    day = bars("2024-03-05", [20.0, 20.0, 20.0], start="15:57", spread=0.04, volume=10_000.0)
    grid = build_grid(with_prior_close(day, "2024-03-04", 20.0))
    costs = CostModel(slippage="linear", impact_coef=0.5, commission_per_share=0.01, commission_bps=2.0,
                      borrow_bps=504.0)
    rec = replay(grid, np.array([0.0, -1000.0, -1000.0, -1000.0])[:, None], costs)
    # sell 1000 at bid 19.98 moved down by mid * 0.5 * 1000 / 10000 = 1.00
    price = 19.98 - 20.0 * 0.05
    assert rec.price[1, 0] == pytest.approx(price)
    assert rec.spread_cost[1, 0] == pytest.approx(1000 * 0.02)
    assert rec.impact_cost[1, 0] == pytest.approx(1000 * 1.00)
    assert rec.commission[1, 0] == pytest.approx(1000 * 0.01 + 1000 * price * 2e-4)
    borrow = 1000 * 20.0 * 0.0504 / 252  # short $20,000 overnight at 5.04% a year
    assert rec.borrow[3, 0] == pytest.approx(borrow)
    pnl = rec.per_step()["pnl"].sum()
    assert pnl == pytest.approx(-(1000 * 0.02 + 1000 * 1.00 + rec.commission[1, 0] + borrow))


def test_the_audit_catches_executions_that_broke_a_rule():
    grid = _limit_down_then_pause()
    rec = replay(grid, np.zeros(grid.shape), FREE)
    fill = rec.fill.copy()
    price = rec.price.copy()
    short = rec.short_fill.copy()
    fill[7, 0], price[7, 0] = 10, 50.01  # during the pause
    fill[3, 0], price[3, 0] = -10, 47.48  # below the lower band
    bad = dataclasses.replace(rec, fill=fill, price=price, short_fill=short)
    rules = violations(bad)["rule"].to_list()
    assert rules == ["fill outside LULD band", "fill during LULD pause"]
    ssr = rec.rules.ssr.copy()
    ssr[2, 0] = True
    fill[2, 0], price[2, 0], short[2, 0] = -10, grid.bid[2, 0], 10  # a short sale at the bid under SSR
    bad = dataclasses.replace(rec, fill=fill, price=price, short_fill=short,
                              rules=dataclasses.replace(rec.rules, ssr=ssr))
    assert "short sale at or below bid under SSR" in violations(bad)["rule"].to_list()
    report = daily_report(bad)
    assert report["violations"].to_list() == [0, 3]
    assert "3 executions broke a rule" in summary_line(report)


@pytest.fixture(scope="module")
def eventful_market():
    params = MarketParams(crash_rate=0.3, spike_rate=0.6)  # this seed holds crashes and an LULD pause
    return build_grid(generate_bars(n_symbols=4, start="2024-01-02", n_days=4, seed=1, params=params))


@pytest.mark.parametrize("slippage", ["sqrt", "linear", "exp_decay"])
def test_vectorised_replay_agrees_with_the_per_bar_loop(eventful_market, slippage):
    grid = eventful_market
    rng = np.random.default_rng(0)
    target = np.round(rng.normal(0, 300, grid.shape)) * (rng.random(grid.shape) < 0.3)
    target[rng.random(grid.shape) < 0.5] = np.nan
    costs = CostModel(slippage=slippage, impact_coef=0.5, decay_s=120.0)
    fast, slow = replay(grid, target, costs), replay_loop(grid, target, costs)
    np.testing.assert_array_equal(fast.reason, slow["reason"])
    np.testing.assert_array_equal(fast.fill, slow["fill"])
    np.testing.assert_allclose(fast.price, slow["price"], rtol=1e-12)
    np.testing.assert_allclose(fast.equity, slow["equity"], rtol=1e-9, atol=1e-6)
    np.testing.assert_array_equal(fast.rules.ssr, slow["ssr"].astype(bool))
    np.testing.assert_array_equal(fast.rules.luld.paused, slow["paused"].astype(bool))
    np.testing.assert_allclose(fast.rules.luld.lower, slow["lower"])
    assert (fast.reason == SSR).any() and fast.rules.luld.paused.any()


def test_an_adversarial_short_seller_breaks_no_rule(eventful_market):
    grid = eventful_market
    falling = np.vstack([np.zeros((1, grid.shape[1])), np.diff(grid.close, axis=0)]) < 0
    rec = replay(grid, np.where(falling, -500.0, 0.0), CostModel())
    report = daily_report(rec)
    assert report["violations"].sum() == 0 and report["rejected_ssr_short_at_or_below_bid"].sum() > 0
    events = rec.events()
    assert events.filter(pl.col("rejection") == "ssr_short_at_or_below_bid")["ssr"].all()
