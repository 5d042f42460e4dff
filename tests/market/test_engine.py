"""Order checks, fills and costs of the vectorised replay: quotes moved by impact, the cap, borrow, the audit."""

from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from dualhrq.data.synthetic import MarketParams, generate_bars
from dualhrq.errors import ConfigError
from dualhrq.market.audit import daily_report, recompute
from dualhrq.market.costs import CostModel
from dualhrq.market.engine import BAND, CAP, OK, PAUSE, SSR, Execution, replay
from dualhrq.market.grid import build_grid

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
    # 10:00:10 sell 100 at bid 47.48 < lower band 47.50: refused, and retried at 10:00:15 until a new target;
    # 10:00:15 buy 100 more (target 200) at the ask 47.50 = band: trades; 10:00:30 paused: refused
    assert rec.reason[:, 0].tolist() == [OK, OK, OK, BAND, OK, OK, OK, PAUSE]
    assert rec.fill[:, 0].tolist() == [0, 100, 0, 0, 100, 0, 0, 0]
    assert rec.price[4, 0] == 47.50
    assert recompute(rec).violations.height == 0


def test_fill_prices_and_costs_by_hand():
    day = bars("2024-03-05", [20.0, 20.0, 20.0], start="15:57", spread=0.04, volume=10_000.0)
    grid = build_grid(with_prior_close(day, "2024-03-04", 20.0))
    costs = CostModel(slippage="linear", impact_coef=0.5, commission_per_share=0.01, commission_bps=2.0,
                      borrow_bps=504.0)
    rec = replay(grid, np.array([0.0, -1000.0, -1000.0, -1000.0])[:, None], costs)
    # sell 1000 (the cap: 10% of 10,000) at bid 19.98 moved down by mid * 0.5 * 1000 / 10000 = 1.00
    price = 19.98 - 20.0 * 0.05
    assert rec.price[1, 0] == pytest.approx(price)
    assert rec.spread_cost[1, 0] == pytest.approx(1000 * 0.02)
    assert rec.impact_cost[1, 0] == pytest.approx(1000 * 1.00)
    assert rec.commission[1, 0] == pytest.approx(1000 * 0.01 + 1000 * price * 2e-4)
    borrow = 1000 * 20.0 * 0.0504 / 360  # short $20,000 overnight (Tuesday to Wednesday) at 5.04% a year
    assert rec.borrow[3, 0] == pytest.approx(borrow)
    pnl = rec.per_step()["pnl"].sum()
    assert pnl == pytest.approx(-(1000 * 0.02 + 1000 * 1.00 + rec.commission[1, 0] + borrow))


def test_borrow_is_charged_for_every_calendar_day_held():
    # short from Friday 2024-03-08 to Tuesday 2024-03-12 (no bars on Monday): 4 calendar days, not 2 sessions
    days = [bars(d, [20.0], start="15:59") for d in ("2024-03-08", "2024-03-12")]
    grid = build_grid(with_prior_close(pl.concat(days), "2024-03-07", 20.0))
    rec = replay(grid, np.array([0.0, -100.0, 0.0])[:, None], CostModel(slippage="none", borrow_bps=360.0))
    assert rec.borrow[:, 0].tolist() == pytest.approx([0.0, 100 * 20.0 * 0.036 * 4 / 360, 0.0])


def test_fills_are_capped_at_a_share_of_bar_volume_and_the_rest_carries_or_is_cancelled():
    day = bars("2024-03-05", np.full(5, 20.0), start="10:00", volume=[10_000, 3_000, 2_000, 50_000, 50_000])
    grid = build_grid(with_prior_close(day, "2024-03-04", 20.0))
    target = np.array([0.0, 2_500.0, np.nan, np.nan, np.nan, np.nan])[:, None]
    carry = replay(grid, target, FREE)
    assert carry.fill[:, 0].tolist() == [0, 1_000, 300, 200, 1_000, 0]  # 10% of each bar's volume
    assert carry.reason[1:4, 0].tolist() == [CAP, CAP, CAP]
    cancel = replay(grid, target, FREE, Execution(remainder="cancel"))
    assert cancel.fill[:, 0].tolist() == [0, 1_000, 0, 0, 0, 0]
    wide = replay(grid, target, FREE, Execution(participation=0.5))
    assert wide.fill[:, 0].tolist() == [0, 2_500, 0, 0, 0, 0]
    with pytest.raises(ConfigError, match="participation"):
        Execution(participation=0.0)
    with pytest.raises(ConfigError, match="remainder"):
        Execution(remainder="queue")


def test_transient_impact_moves_the_quotes_the_fills_and_rules_see():
    # buy 1,000 then sell 1,000 a minute later: the sell hits a bid raised by the remaining displacement
    day = bars("2024-03-05", np.full(4, 20.0), start="10:00", spread=0.02, volume=10_000.0)
    grid = build_grid(with_prior_close(day, "2024-03-04", 20.0))
    costs = CostModel(slippage="exp_decay", impact_coef=0.2, decay_s=60.0, commission_per_share=0.0,
                      borrow_bps=0.0)
    rec = replay(grid, np.array([0.0, 1_000.0, 0.0, 0.0, 0.0])[:, None], costs)
    # buy: ask 20.01 + 20.00 * 0.02 = 20.41; displacement 0.02 -> 0.02 / e a minute later = $0.15 on a $20 mid
    assert rec.price[1, 0] == pytest.approx(20.41)
    shift = 0.15
    assert rec.quote_shift[2, 0] == pytest.approx(shift)
    sell = 19.73  # the raised bid 20.14 less the sell's own impact 0.02 * 20.15, rounded down to the cent
    assert rec.price[2, 0] == pytest.approx(sell) and rec.price[2, 0] <= grid.bid[2, 0] + shift
    assert recompute(rec).violations.height == 0


@pytest.fixture(scope="module")
def eventful_market():
    params = MarketParams(crash_rate=0.3, spike_rate=0.6)  # this seed holds crashes and LULD pauses
    return build_grid(generate_bars(n_symbols=4, start="2024-01-02", n_days=4, seed=1, params=params))


@pytest.mark.parametrize("slippage", ["sqrt", "linear", "exp_decay"])
def test_the_engine_and_the_audit_agree_on_the_rule_state(eventful_market, slippage):
    grid = eventful_market
    rng = np.random.default_rng(0)
    target = np.round(rng.normal(0, 300, grid.shape)) * (rng.random(grid.shape) < 0.3)
    target[rng.random(grid.shape) < 0.5] = np.nan
    rec = replay(grid, target, CostModel(slippage=slippage, impact_coef=0.5, decay_s=120.0))
    audit = recompute(rec)
    np.testing.assert_array_equal(rec.rules.ssr, audit.ssr)
    np.testing.assert_array_equal(rec.rules.luld.paused, audit.paused)
    np.testing.assert_array_equal(rec.rules.luld.lower, audit.lower)
    np.testing.assert_array_equal(rec.rules.luld.upper, audit.upper)
    assert audit.violations.height == 0
    assert (rec.reason == SSR).any() and rec.rules.luld.paused.any() and (rec.passive != 0).any()


@pytest.mark.parametrize("slippage", ["none", "sqrt", "linear", "exp_decay"])
def test_an_adversarial_short_seller_breaks_no_rule(eventful_market, slippage):
    grid = eventful_market
    falling = np.vstack([np.zeros((1, grid.shape[1])), np.diff(grid.close, axis=0)]) < 0
    rec = replay(grid, np.where(falling, -500.0, 0.0), CostModel(slippage=slippage))
    report = daily_report(rec)
    assert report["violations"].sum() == 0 and report["rejected_ssr_short_posted_above_bid"].sum() > 0
    assert rec.rules.luld.counts()["pauses"] > 0
    bought, sold = rec.marketable > 0, rec.marketable < 0
    shift = rec.quote_shift
    assert (rec.price[bought] >= (grid.ask + shift)[bought] - 1e-9).all()
    assert (rec.price[sold] <= (grid.bid + shift)[sold] + 1e-9).all()
    events = rec.events()
    assert events.filter(pl.col("rejection") == "ssr_short_posted_above_bid")["ssr"].all()
