"""Named, seeded markets for the rule engine, each with the outcome the rules must produce.

A scenario lays out a few minute bars around one rule event; its seed draws
the volumes and trade counts, which must not change the outcome. ``check``
asserts the outcome on the replay of ``target`` (shares per step, NaN: no new
decision) with costs off.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl

from dualhrq.market.engine import OK, PAUSE, Replay
from dualhrq.market.luld import LIMIT_DOWN, LIMIT_UP

from .conftest import bars, with_prior_close


@dataclass(frozen=True)
class Scenario:
    name: str
    frame: Callable[[np.random.Generator], pl.DataFrame]
    target: Callable[[pl.DataFrame], np.ndarray]  # (T,) shares of the one symbol, given the sorted bars
    check: Callable[[Replay], None]


def _noisy(frame: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    n = frame.height
    return frame.with_columns(volume=pl.Series(rng.integers(20_000, 60_000, n).astype(float)),
                              trades=pl.Series(rng.integers(5, 50, n)))


def _at(rec: Replay, stamp: str) -> int:
    return int(np.searchsorted(rec.grid.bar_ts, np.datetime64(datetime.fromisoformat(stamp), "us")))


def _none(frame: pl.DataFrame) -> np.ndarray:
    return np.full(frame.height, np.nan)


# ---- flash crash: limit down, pause, reopen lower, limit up against the new reference
def _flash_frame(rng):
    closes = [50.0, 47.6, 47.0, 47.0, 47.0, 47.0, 47.0, 47.2, 49.0, 48.5]
    lows = [50.0, 47.40, 47.0, 47.0, 47.0, 47.0, 47.0, 47.0, 47.2, 48.5]
    highs = [50.0, 50.0, 47.6, 47.0, 47.0, 47.0, 47.0, 47.2, 49.60, 49.0]
    asks = [50.01, 47.50, 47.01, 47.01, 47.01, 47.01, 47.01, 47.21, 49.01, 48.51]
    day = bars("2021-03-01", closes, start="10:00", low=lows, ask=asks, bid=[a - 0.02 for a in asks])
    day = day.with_columns(high=pl.Series(highs))
    return _noisy(with_prior_close(day, "2021-02-26", 50.0), rng)


def _flash_check(rec: Replay):
    luld = rec.rules.luld
    crash, reopen, rally = _at(rec, "2021-03-01T10:01"), _at(rec, "2021-03-01T10:06"), _at(rec, "2021-03-01T10:08")
    assert luld.limit[crash, 0] == LIMIT_DOWN  # the 10:01 bar trades at 47.40, through the 47.50 band
    assert luld.paused[crash:reopen, 0].all() and not luld.paused[reopen:rally, 0].any()  # 10:01:15 .. 10:06:15
    assert luld.reference[reopen, 0] == 47.0  # the reopening trade is the new reference
    assert luld.limit[rally, 0] == LIMIT_UP and luld.paused[rally, 0]  # 49.60 beyond 47.00 + 5% = 49.35
    # a buy decided at 10:02, inside the pause, waits for the reopening
    assert (rec.reason[crash + 1:reopen, 0] == PAUSE).all() and (rec.fill[crash:reopen, 0] == 0).all()
    assert rec.fill[reopen, 0] == 100


# ---- two 10% drops on consecutive days: the restriction is extended to the day after the second
def _twice_frame(rng):
    day1 = bars("2024-03-05", np.linspace(100.0, 89.0, 60), start="10:00")
    day2 = bars("2024-03-06", np.linspace(89.0, 79.5, 60), start="10:00")
    day3 = bars("2024-03-07", np.full(5, 79.5), start="10:00")
    day4 = bars("2024-03-08", np.full(5, 79.5), start="10:00")
    return _noisy(with_prior_close(pl.concat([day1, day2, day3, day4]), "2024-03-04", 100.0), rng)


def _twice_check(rec: Replay):
    ssr, day = rec.rules.ssr[:, 0], rec.grid.day
    first = int(np.argmax(ssr))
    assert rec.grid.low[first, 0] <= 90.0 < rec.grid.low[first - 1, 0]  # day 1 triggers at its -10% bar
    assert ssr[first:][day[first:] == 1].all()
    assert ssr[day == 2].all() and ssr[day == 3].all()  # day 2 carried (and triggered again); day 3 extended
    assert not ssr[day == 4].any() and not rec.rules.luld.paused.any()


# ---- a sub-$3 Tier 2 name in the closing window, before and after Amendment 18, against a $50 Tier 2 name
def _closing_frame(day: str, prior: str, close: float):
    def build(rng):
        path = np.full(10, close)
        highs = path.copy()
        highs[5] = close * (1.25 if close < 3 else 1.15)  # 15:45 bar: +25% ($2.50) or +15% ($50)
        frame = bars(day, path, start="15:40", tier=2).with_columns(high=pl.Series(highs))
        return _noisy(with_prior_close(frame, prior, close), rng)
    return build


def _closing_check(paused: bool):
    def check(rec: Replay):
        assert rec.rules.luld.paused.any() == paused
    return check


# ---- a pause that runs past the close; the next session starts fresh
def _halt_frame(rng):
    highs = np.full(5, 50.0)
    highs[2] = 56.0  # 15:57 bar trades 12% up, through the doubled closing band of 10%
    day1 = bars("2021-03-01", np.full(5, 50.0), start="15:55").with_columns(high=pl.Series(highs))
    day2 = bars("2021-03-02", np.full(3, 50.0), start="09:30")
    return _noisy(with_prior_close(pl.concat([day1, day2]), "2021-02-26", 50.0), rng)


def _halt_target(frame):
    target = np.full(frame.height, np.nan)
    target[4] = 100.0  # decided at 15:58, during the pause
    return target


def _halt_check(rec: Replay):
    paused = rec.rules.luld.paused[:, 0]
    assert paused[3:6].all()  # 15:57:15 + 5 min runs past 16:00
    assert not paused[6:].any()  # the next session opens without a pause
    assert (rec.fill[3:6, 0] == 0).all() and rec.reason[4, 0] == PAUSE
    assert rec.fill[6, 0] == 100 and rec.reason[6, 0] == OK  # the order carries into the next open


# ---- an early close: the closing window is the last 25 minutes before 13:00
def _early_frame(rng):
    highs = np.full(20, 50.0)
    highs[3] = 53.5  # 12:28: +7%, through the 5% band
    highs[13] = 53.5  # 12:38: +7%, inside the doubled band from 12:35
    frame = bars("2021-11-26", np.full(20, 50.0), start="12:25").with_columns(high=pl.Series(highs))
    return _noisy(with_prior_close(frame, "2021-11-24", 50.0), rng)


def _early_check(rec: Replay):
    paused, limit = rec.rules.luld.paused[:, 0], rec.rules.luld.limit[:, 0]
    assert paused[4] and not paused[10:].any()  # 12:28:15 .. 12:33:15
    assert limit[14] == 0  # 12:38 inside the doubled band
    assert rec.grid.session_close_us[1] == np.datetime64("2021-11-26T13:00", "us").astype(np.int64)


SCENARIOS = (
    Scenario("flash_crash", _flash_frame, lambda f: np.r_[np.nan, 0, 0, 100, np.full(7, np.nan)],
             _flash_check),
    Scenario("ssr_twice", _twice_frame, _none, _twice_check),
    Scenario("sub3_tier2_close_old_plan", _closing_frame("2020-02-21", "2020-02-20", 2.50), _none,
             _closing_check(False)),
    Scenario("sub3_tier2_close_amendment18", _closing_frame("2020-02-24", "2020-02-21", 2.50), _none,
             _closing_check(False)),
    Scenario("tier2_close_old_plan", _closing_frame("2020-02-21", "2020-02-20", 50.0), _none, _closing_check(False)),
    Scenario("tier2_close_amendment18", _closing_frame("2020-02-24", "2020-02-21", 50.0), _none,
             _closing_check(True)),
    Scenario("halt_across_close", _halt_frame, _halt_target, _halt_check),
    Scenario("early_close", _early_frame, _none, _early_check),
)
