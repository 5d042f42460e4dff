"""Rule 201 on hand-built bars: trigger, persistence into the next day, the bid test."""

import numpy as np
import polars as pl
import pytest

from dualhrq.market.costs import CostModel
from dualhrq.market.engine import OK, SSR, replay
from dualhrq.market.grid import build_grid
from dualhrq.market.ssr import short_sale_allowed, ssr_restricted

from .conftest import bars, with_prior_close


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


def test_a_trigger_in_the_last_minute_restricts_the_whole_next_day():
    day2 = bars("2024-03-05", [99.0, 89.5], start="15:58", low=[99.0, 89.5])  # the 15:59 bar falls 10.5%
    day3 = bars("2024-03-06", [90.0, 90.0, 90.0], start="09:30")
    grid = build_grid(with_prior_close(pl.concat([day2, day3]), "2024-03-04", 100.0))
    assert ssr_restricted(grid)[:, 0].tolist() == [False, False, True, True, True, True]


def test_bid_test_allows_only_prices_above_the_bid():
    bid = np.array([10.0, 10.0, 10.0])
    price = np.array([10.01, 10.0, 9.99])
    assert short_sale_allowed(price, bid, np.ones(3, bool)).tolist() == [True, False, False]
    assert short_sale_allowed(price, bid, np.zeros(3, bool)).all()


@pytest.mark.parametrize("restricted_step", [True, False])
def test_short_sales_are_rejected_under_ssr_while_long_sales_and_buys_trade(restricted_step):
    # day 2 bars: 10:00 flat, 10:01 triggers if restricted_step; orders at 10:02..10:04
    low = 89.0 if restricted_step else 95.0
    day2 = bars("2024-03-05", [96.0, 95.0, 95.0, 95.0, 95.0], start="10:00", low=[96, low, 95, 95, 95])
    grid = build_grid(with_prior_close(day2, "2024-03-04", 100.0))
    #          prior, 10:00, 10:01, buy 100, sell 200 (100 long + 100 short), short 100 more
    target = np.array([[0.0], [0.0], [0.0], [100.0], [-100.0], [-200.0]])
    rec = replay(grid, target, CostModel(slippage="none", commission_per_share=0.0, borrow_bps=0.0))
    if restricted_step:
        assert rec.fill[:, 0].tolist() == [0, 0, 0, 100, -100, 0]
        assert rec.reason[:, 0].tolist() == [OK, OK, OK, OK, SSR, SSR]
        assert rec.position[-1, 0] == 0.0
    else:
        assert rec.fill[:, 0].tolist() == [0, 0, 0, 100, -200, -100]
        assert rec.short_fill[:, 0].tolist() == [0, 0, 0, 0, 100, 100]
        assert (rec.reason == OK).all()
