"""Rule 201 on hand-built bars: trigger at exact -10% levels, persistence into the next day, the bid test."""

import numpy as np
import polars as pl
import pytest

from dualhrq.market.costs import CostModel
from dualhrq.market.engine import OK, SSR, replay
from dualhrq.market.grid import build_grid
from dualhrq.market.ssr import ssr_restricted, triggered
from dualhrq.market.ticks import to_units

from .conftest import bars, with_prior_close

FREE = CostModel(slippage="none", commission_per_share=0.0, borrow_bps=0.0)


def _three_days(low_day2, day2_start="10:00"):
    """Prior close 100; day 2 has a bar whose low is ``low_day2``; day 3 and day 4 trade flat at 95."""
    day2 = bars("2024-03-05", [99.0, 98.0, 97.0], start=day2_start, low=[99.0, low_day2, 97.0])
    day3 = bars("2024-03-06", [95.0, 95.0], start="09:30")
    day4 = bars("2024-03-07", [95.0, 95.0], start="09:30")
    return build_grid(with_prior_close(pl.concat([day2, day3, day4]), "2024-03-04", 100.0))


def test_a_ten_percent_decline_triggers_for_the_rest_of_the_day_and_the_next_day():
    grid = _three_days(90.0)  # exactly 10% below the prior close
    restricted = ssr_restricted(grid)[:, 0]
    #            prior  day 2 (trigger at 2nd bar)  day 3 (all)   day 4 (released)
    assert restricted.tolist() == [False, False, True, True, True, True, False, False]


def test_a_decline_short_of_ten_percent_does_not_trigger():
    grid = _three_days(90.01)
    assert not ssr_restricted(grid).any()


def test_every_whole_cent_minus_ten_percent_level_from_1_to_2000_dollars_triggers():
    # prior closes $1.00..$2,000.00 whose 90% is a whole cent: every 10th cent, 19,991 of them
    cents = np.arange(100, 200_001, 10)
    assert cents.size == 19_991
    prior = cents / 100.0
    at_level = (cents * 9 // 10) / 100.0  # the trade exactly 10% down, as a decimal price (9.63 for 10.70)
    assert triggered(to_units(at_level), to_units(prior), 10).all()
    assert not triggered(to_units(at_level + 0.01), to_units(prior), 10).any()
    # the float test the engine used to apply misses a share of them
    assert (at_level <= 0.9 * prior).sum() < cents.size


def test_exact_levels_trigger_through_the_whole_grid():
    # one symbol per level: a 15:59 bar closing at the prior close, then a day-2 bar trading exactly 10% down
    # (the first half of the symbols) or a cent above that (the second half)
    cents = np.arange(100, 200_001, 10)
    prior, level = cents / 100.0, (cents * 9 // 10) / 100.0
    low = np.r_[level[:10_000], level[10_000:] + 0.01]
    n = cents.size
    frame = pl.DataFrame({
        "ts": pl.Series(["2024-03-04T15:59"] * n + ["2024-03-05T10:00"] * n).str.to_datetime(time_unit="us"),
        "symbol": [f"S{k:05d}" for k in range(n)] * 2,
        "open": np.r_[prior, prior], "high": np.r_[prior, prior], "low": np.r_[prior, low],
        "close": np.r_[prior, prior], "volume": 1e4, "trades": 10, "bid": np.r_[prior, prior] - 0.01,
        "ask": np.r_[prior, prior] + 0.01, "bid_size": 100.0, "ask_size": 100.0,
    }).with_columns(luld_tier=pl.lit(1, pl.Int8))
    restricted = ssr_restricted(build_grid(frame))[1]
    assert restricted[:10_000].all() and not restricted[10_000:].any()


def test_the_reported_misses_trigger():
    assert triggered(to_units(9.63), to_units(10.70), 10) and triggered(to_units(2.97), to_units(3.30), 10)


def test_a_trigger_in_the_last_minute_restricts_the_whole_next_day():
    day2 = bars("2024-03-05", [99.0, 89.5], start="15:58", low=[99.0, 89.5])  # the 15:59 bar falls 10.5%
    day3 = bars("2024-03-06", [90.0, 90.0, 90.0], start="09:30")
    grid = build_grid(with_prior_close(pl.concat([day2, day3]), "2024-03-04", 100.0))
    assert ssr_restricted(grid)[:, 0].tolist() == [False, False, True, True, True, True]


@pytest.mark.parametrize("restricted_step", [True, False])
def test_short_sales_under_ssr_are_posted_above_the_bid_while_long_sales_and_buys_trade(restricted_step):
    # day 2 gaps down to 91 (the LULD reference), 10:01 trades at 89.50 if restricted_step; orders at 10:02..10:04
    low = 89.5 if restricted_step else 90.5
    day2 = bars("2024-03-05", [91.0, 91.0, 91.0, 91.0, 91.0], start="10:00", low=[91, low, 91, 91, 91])
    grid = build_grid(with_prior_close(day2, "2024-03-04", 100.0))
    #          prior, 10:00, 10:01, buy 100, sell 200 (100 long + 100 short), short 100 more
    target = np.array([[0.0], [0.0], [0.0], [100.0], [-100.0], [-200.0]])
    rec = replay(grid, target, FREE)
    if restricted_step:
        # the short parts rest at 91.00 (bid 90.99 + 1 tick); no later bar trades above 91.00
        assert rec.fill[:, 0].tolist() == [0, 0, 0, 100, -100, 0]
        assert rec.reason[:, 0].tolist() == [OK, OK, OK, OK, SSR, SSR]
        assert rec.position[-1, 0] == 0.0
    else:
        assert rec.fill[:, 0].tolist() == [0, 0, 0, 100, -200, -100]
        assert rec.short_fill[:, 0].tolist() == [0, 0, 0, 0, 100, 100]
        assert (rec.reason == OK).all()


def test_a_posted_short_fills_when_a_later_bar_trades_through_it_while_the_rule_allows():
    # SSR from 10:01 (low 89.50 < 90); short 100 decided at 10:02 rests at 91.00 (bid 90.99 + $0.01)
    closes = [91.0, 91.0, 91.0, 91.0, 91.5, 91.0]
    highs = [91.0, 91.0, 91.0, 91.0, 91.6, 91.0]
    day2 = bars("2024-03-05", closes, start="10:00", low=[91, 89.5, 91, 91, 91, 91], bid=90.99, ask=91.01)
    day2 = day2.with_columns(high=pl.Series(highs))
    grid = build_grid(with_prior_close(day2, "2024-03-04", 100.0))
    target = np.array([0.0, 0.0, 0.0, -100.0, -100.0, -100.0, -100.0])[:, None]
    rec = replay(grid, target, FREE)
    assert rec.reason[3, 0] == SSR and rec.fill[3, 0] == 0
    assert rec.fill[:, 0].tolist() == [0, 0, 0, 0, 0, -100, 0]  # 10:04 trades up to 91.60, through 91.00
    assert rec.passive[5, 0] == -100 and rec.limit_price[5, 0] == pytest.approx(91.00)
    assert rec.limit_price[5, 0] > grid.bid[5, 0] and rec.short_fill[5, 0] == 100
    # a bid that rose to the limit by the fill blocks it: the bid test uses the bid in force at the fill
    blocked = build_grid(with_prior_close(day2.with_columns(
        bid=pl.Series([90.99] * 4 + [91.00, 90.99])), "2024-03-04", 100.0))
    assert (replay(blocked, target, FREE).fill[:6] == 0).all()
