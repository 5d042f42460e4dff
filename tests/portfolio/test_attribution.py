"""Post-trade analysis: implementation shortfall against the arrival mid, worked by hand on a two-bar fill."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from dualhrq.market.costs import CostModel
from dualhrq.market.engine import Execution, replay
from dualhrq.market.grid import build_grid
from dualhrq.portfolio.attribution import implementation_shortfall, symbol_pnl
from tests.market.conftest import bars

FEE = 0.0035  # $ per share


def test_the_shortfall_of_an_order_worked_over_two_bars_splits_into_delay_spread_and_commission():
    market = pl.concat([bars("2024-03-04", [100.0], start="15:59"),
                        bars("2024-03-05", [100.0, 100.0, 101.0, 102.0], start="09:30", volume=10_000.0)])
    grid = build_grid(market)
    target = np.full((grid.shape[0], 1), np.nan)
    target[2] = 1_500.0  # decided at 09:31 (mid $100); the cap (10% of 10,000) fills 1,000 now, 500 at 09:32
    costs = CostModel(slippage="none", commission_per_share=FEE, borrow_bps=0.0)
    rec = replay(grid, target, costs, Execution(participation=0.10))
    assert rec.fill[2:4, 0].tolist() == [1_000.0, 500.0]
    got = implementation_shortfall(rec)
    # bought at the ask, a cent above the mid: 1,000 at $100.01 and 500 at $101.01, against an arrival mid of $100
    shortfall = 1_000 * 0.01 + 500 * 1.01 + 1_500 * FEE
    assert got["shortfall"] == pytest.approx(shortfall)
    assert got["delay"] == pytest.approx(500 * 1.0)  # the mid moved $1 before the second fill
    assert got["spread"] == pytest.approx(1_500 * 0.01)
    assert got["impact"] == pytest.approx(0.0, abs=1e-9)
    assert got["commission"] == pytest.approx(1_500 * FEE)
    traded = 1_000 * 100.01 + 500 * 101.01
    assert got["shortfall_bps"] == pytest.approx(shortfall / traded * 1e4)
    pnl = symbol_pnl(rec).row(0, named=True)
    # marked at the last mid ($102): 1,500 shares bought for $151,515 plus fees
    assert pnl["net_pnl"] == pytest.approx(1_500 * 102.0 - traded - 1_500 * FEE)
