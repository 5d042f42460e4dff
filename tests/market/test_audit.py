"""The independent audit: it recomputes the rules from raw bars and quotes and reports every bad fill."""

import dataclasses
from datetime import timedelta

import numpy as np
import polars as pl

from dualhrq.market.audit import daily_report, recompute, summary_line
from dualhrq.market.costs import CostModel
from dualhrq.market.engine import replay
from dualhrq.market.grid import build_grid

from .conftest import bars, with_prior_close

FREE = CostModel(slippage="none", commission_per_share=0.0, borrow_bps=0.0)


def _market():
    """Prior close $100; day 2 gaps to 91 and trades at 89.50 at 10:00:05 (SSR); the offer sits at the lower
    band 86.45 from 10:00:15 to 10:00:30, so trading pauses from 10:00:30."""
    asks = [91.01, 91.01, 91.01, 86.45, 86.45, 86.45, 86.45, 91.01]
    day = bars("2024-03-05", np.full(8, 91.0), start="10:00", low=[91, 89.5, 91, 91, 91, 91, 91, 91], ask=asks,
               bid=[a - 0.02 for a in asks], step_s=5)
    return build_grid(with_prior_close(day, "2024-03-04", 100.0), bar=timedelta(0))


def _inject(rec, **cells):
    """A copy of the replay with fills written in: name -> list of (step, value)."""
    arrays = {k: getattr(rec, k).copy() for k in ("fill", "marketable", "passive", "price", "limit_price")}
    for name, writes in cells.items():
        for t, v in writes:
            arrays[name][t, 0] = v
    return dataclasses.replace(rec, **arrays)


def test_each_injected_bad_fill_is_reported_from_the_raw_market():
    grid = _market()
    rec = replay(grid, np.zeros(grid.shape), FREE)
    assert recompute(rec).violations.height == 0 and rec.rules.ssr[2, 0] and rec.rules.luld.paused[8, 0]
    # the engine's own rule state is blanked: the audit must find everything from the bars and quotes
    blind = dataclasses.replace(rec, rules=dataclasses.replace(
        rec.rules, ssr=np.zeros_like(rec.rules.ssr), luld=dataclasses.replace(
            rec.rules.luld, paused=np.zeros_like(rec.rules.luld.paused), lower=np.full(grid.shape, np.nan),
            upper=np.full(grid.shape, np.nan))))
    bad = _inject(blind,
                  fill=[(2, -10), (4, 10), (8, 10)], marketable=[(2, -10), (4, 10), (8, 10)],
                  price=[(2, 90.99), (4, 86.00), (8, 91.01)])
    found = recompute(bad).violations
    # 10:00:05 short at the bid under SSR (10:00:05 bar traded 89.50 <= 90.00);
    # 10:00:15 buy at 86.00, under the 86.45 band and below the ask; 10:00:35 inside the pause from 10:00:30
    assert found.select("ts", "rule").rows() == [
        (grid.bar_ts[2], "short sale under SSR at or below the bid"),
        (grid.bar_ts[4], "fill outside LULD band"), (grid.bar_ts[4], "fill printed through the quote"),
        (grid.bar_ts[8], "fill during LULD pause"),
    ]
    report = daily_report(bad)
    assert report["violations"].to_list() == [0, 4]
    assert "4 executions broke a rule" in summary_line(report)


def test_bad_resting_fills_and_oversized_fills_are_reported():
    grid = _market()
    rec = replay(grid, np.zeros(grid.shape), FREE)
    bad = _inject(rec, fill=[(3, -10), (5, 2_000)], passive=[(3, -10)], limit_price=[(3, 91.50)],
                  marketable=[(5, 2_000)], price=[(5, 91.01)])
    rules = recompute(bad).violations["rule"].to_list()
    # 91.50 is above the bar's high (91.00); 2,000 shares is twice 10% of the bar's 10,000
    assert "limit fill the bar never traded through" in rules and "fill above the participation cap" in rules


def test_a_transient_sell_above_the_raw_bid_is_judged_against_the_moved_quotes():
    day = bars("2024-03-05", np.full(3, 20.0), start="10:00", spread=0.02, volume=10_000.0)
    grid = build_grid(with_prior_close(day, "2024-03-04", 20.0))
    costs = CostModel(slippage="exp_decay", impact_coef=0.2, decay_s=60.0)
    rec = replay(grid, np.array([0.0, 1_000.0, 0.0, 0.0])[:, None], costs)
    assert rec.price[2, 0] > grid.bid[2, 0] - 0.4 and recompute(rec).violations.height == 0
    # the same sell priced above the moved bid prints through it
    bad = _inject(rec, price=[(2, float(grid.ask[2, 0] + rec.quote_shift[2, 0] + 0.01))])
    assert recompute(bad).violations.filter(pl.col("rule") == "fill printed through the quote").height == 1
