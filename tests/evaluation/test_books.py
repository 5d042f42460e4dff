"""The HRM daily book made from intraday signals: each session's last decision, held close to close."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from dualhrq.evaluation.books import daily_decisions, hrm_daily, realized_on, session_closes


def test_the_last_decision_of_a_session_earns_the_next_close_to_close_return():
    bars = pl.DataFrame({
        "ts": [datetime(2024, 3, 4, 15, 58), datetime(2024, 3, 4, 15, 59), datetime(2024, 3, 5, 15, 59),
               datetime(2024, 3, 6, 15, 59)],
        "symbol": "AAA", "close": [99.0, 100.0, 110.0, 99.0]})
    predictions = pl.DataFrame({
        "ts": [datetime(2024, 3, 4, 10, 0), datetime(2024, 3, 4, 15, 30), datetime(2024, 3, 5, 12, 0)],
        "symbol": "AAA", "signal": [0.5, -0.2, 0.8]})
    closes = session_closes(bars)
    assert closes["close"].to_list() == [100.0, 110.0, 99.0]  # the sessions' last closes
    decisions = daily_decisions(predictions, closes)
    assert decisions["signal"].to_list() == [-0.2, 0.8]
    assert decisions["next_return"].to_list() == pytest.approx([0.10, -0.10])
    result = hrm_daily(predictions, closes, cost_bps=10.0)
    # day 1: -0.2 x +10% less 10 bp of the 0.2 traded; day 2: 0.8 x -10% less 10 bp of the 1.0 traded
    assert result.returns["net"].to_list() == pytest.approx([-0.02 - 0.2e-3, -0.08 - 1.0e-3])


def test_the_daily_books_return_is_labelled_with_the_session_that_earns_it():
    closes = pl.DataFrame({"ts": [datetime(2024, 3, d) for d in (4, 5, 6, 8)], "symbol": "AAA",
                           "close": [100.0, 110.0, 99.0, 99.0]})
    decided = pl.DataFrame({"ts": [datetime(2024, 3, d) for d in (4, 5, 6, 8)], "net": [0.1, 0.2, 0.3, 0.4]})
    moved = realized_on(decided, closes)
    # decided on the 4th, earned over the 5th; the decision on the last session (the 8th) has no return yet
    assert moved["ts"].to_list() == [datetime(2024, 3, d) for d in (5, 6, 8)]
    assert moved["net"].to_list() == [0.1, 0.2, 0.3]
