"""LULD on hand-built quote sequences: bands, reference price, doubling, limit states, pauses, reopening."""

from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from dualhrq.data.synthetic import MarketParams, generate_bars, generate_events
from dualhrq.market.grid import build_grid
from dualhrq.market.luld import LIMIT_DOWN, LIMIT_UP, band_parameter, bands, doubled, luld_state, trips
from dualhrq.market.rules import luld_in_force
from dualhrq.market.ticks import to_dollars, to_units

from .conftest import bars, with_prior_close

POST = luld_in_force(date(2021, 3, 1))  # Amendment 18 in force
PRE = luld_in_force(date(2019, 3, 1))


def _us(stamp: str) -> int:
    return int(np.datetime64(datetime.fromisoformat(stamp), "us").astype(np.int64))


@pytest.mark.parametrize(("prev_close", "tier", "ref", "lower", "upper"), [
    (50.0, 1, 50.0, 47.50, 52.50),  # Tier 1 above $3: 5%
    (50.0, 2, 50.0, 45.00, 55.00),  # Tier 2 above $3: 10%
    (2.00, 1, 2.00, 1.60, 2.40),  # $0.75..$3.00: 20%, either tier
    (3.00, 2, 3.00, 2.40, 3.60),  # $3.00 itself is in the 20% row
    (0.75, 1, 0.75, 0.60, 0.90),  # $0.75 itself is in the 20% row
    (0.50, 1, 0.50, 0.35, 0.65),  # below $0.75: lesser of $0.15 and 75% -> $0.15
    (0.12, 2, 0.12, 0.03, 0.21),  # ... -> 75% = $0.09
])
def test_band_rows_of_appendix_a(prev_close, tier, ref, lower, upper):
    pct, cap = band_parameter(to_units([prev_close]), np.array([tier]), POST)
    lo, hi = to_dollars(bands(to_units([ref]), pct, cap, np.array([False])))
    assert (lo[0], hi[0]) == pytest.approx((lower, upper))


def test_row_follows_the_previous_close_and_width_the_live_reference():
    pct, cap = band_parameter(to_units([3.50, 2.90]), np.array([1, 1]), POST)
    lo, hi = to_dollars(bands(to_units([2.00, 4.00]), pct, cap, np.array([False, False])))
    assert lo.tolist() == pytest.approx([1.90, 3.20])  # 5% of $2.00; 20% of $4.00
    assert hi.tolist() == pytest.approx([2.10, 4.80])


def test_doubling_windows_by_amendment():
    tier = np.array([1, 2, 2])
    prev = to_units([50.0, 50.0, 2.50])
    for day, table, opening, closing in [("2019-03-01", PRE, [1, 1, 1], [1, 1, 1]),
                                         ("2021-03-01", POST, [0, 0, 0], [1, 0, 1])]:
        open_us, close_us = _us(f"{day}T09:30"), _us(f"{day}T16:00")
        assert doubled(_us(f"{day}T09:35"), open_us, close_us, prev, tier, table).tolist() == [bool(x) for x in opening]
        assert doubled(_us(f"{day}T15:40"), open_us, close_us, prev, tier, table).tolist() == [bool(x) for x in closing]
        assert not doubled(_us(f"{day}T09:45"), open_us, close_us, prev, tier, table).any()
        assert not doubled(_us(f"{day}T15:34:59"), open_us, close_us, prev, tier, table).any()


def test_an_early_close_doubles_its_last_25_minutes():
    day = bars("2021-11-26", np.full(210, 50.0), flat=True)  # the day after Thanksgiving: 09:30..12:59
    grid = build_grid(with_prior_close(day, "2021-11-24", 50.0))
    assert grid.session_close_us[1] == _us("2021-11-26T13:00")
    state = luld_state(grid)
    ts = [t.astype(datetime) for t in grid.bar_ts]
    width = (state.upper - state.lower)[:, 0] / 2
    at = {t.strftime("%H:%M"): w for t, w in zip(ts, width, strict=True) if t.date() == date(2021, 11, 26)}
    assert at["12:33"] == pytest.approx(2.50)  # quote at 12:34: normal 5%
    assert at["12:34"] == pytest.approx(5.00)  # quote at 12:35: doubled
    assert at["12:59"] == pytest.approx(5.00)


def test_reference_price_moves_only_on_a_one_percent_change():
    prices = [50.0, 50.2, 50.4, 50.6, 50.8, 51.0, 51.0]
    day = bars("2021-03-01", prices, start="10:00", flat=True, trades=1)
    grid = build_grid(with_prior_close(day, "2021-02-26", 50.0))
    state = luld_state(grid)
    # window means: 50, 50.1, 50.2, 50.3, 50.4 (< 1% from 50), 50.6 (1.2%: adopted), 50.76 (0.3%: kept)
    assert state.reference[1:, 0].tolist() == pytest.approx([50, 50, 50, 50, 50, 50.6, 50.6])
    assert state.lower[6, 0] == pytest.approx(48.07) and state.upper[6, 0] == pytest.approx(53.13)


def _quotes(asks, bids=None, step_s=5):
    """Tier 1, previous close $50, quotes every ``step_s`` seconds from 10:00:00; trades only at $50."""
    n = len(asks)
    bids = [a - 0.02 for a in asks] if bids is None else bids
    day = bars("2021-03-01", np.full(n, 50.0), start="10:00", step_s=step_s, flat=True, trades=0,
               bid=bids, ask=asks)
    day = day.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(1).otherwise(0).cast(pl.Int64).alias("trades"))
    return build_grid(with_prior_close(day, "2021-02-26", 50.0), bar=timedelta(0))


def test_limit_state_resolved_within_15_seconds_does_not_pause():
    # bands 47.50 / 52.50; the offer sits at the lower band at 10:00:10 and 10:00:15, lifts at 10:00:20
    state = luld_state(_quotes([50.01, 50.01, 47.50, 47.50, 50.01, 50.01]))
    assert state.limit[1:, 0].tolist() == [0, 0, LIMIT_DOWN, LIMIT_DOWN, 0, 0]
    assert not state.paused.any()


def test_limit_state_beyond_15_seconds_pauses_five_minutes_then_reopens():
    asks = [50.01, 50.01, 47.50, 47.50, 47.50, 47.50, 50.01]  # limit state 10:00:10..10:00:30 (20 s)
    grid = _quotes(asks)
    state = luld_state(grid)
    assert state.paused[1:, 0].tolist() == [False] * 6 + [True]  # paused from 10:00:25
    # a quote stream across the pause: 10:05:20 still paused, 10:05:25 reopens at the reopening trade
    times = ["10:00:00", "10:00:10", "10:00:26", "10:05:20", "10:05:25", "10:05:30"]
    stamps = [datetime.fromisoformat(f"2021-03-01T{t}") for t in times]
    day = bars("2021-03-01", [50.0, 50.0, 50.0, 50.0, 49.0, 49.0], flat=True, trades=[1, 0, 0, 0, 1, 0],
               ask=[50.01, 47.50, 50.01, 50.01, 49.01, 49.01], bid=[49.99, 47.48, 49.99, 49.99, 48.99, 48.99])
    day = day.with_columns(ts=pl.Series(stamps, dtype=pl.Datetime("us")))
    state = luld_state(build_grid(with_prior_close(day, "2021-02-26", 50.0), bar=timedelta(0)))
    assert state.paused[1:, 0].tolist() == [False, False, True, True, False, False]
    assert state.limit[2, 0] == LIMIT_DOWN
    assert state.reference[5, 0] == pytest.approx(49.0)  # the reopening price becomes the reference
    assert (state.lower[5, 0], state.upper[5, 0]) == pytest.approx((46.55, 51.45))


def test_limit_up_state_on_the_bid():
    state = luld_state(_quotes([50.01, 52.52, 52.52, 50.01], bids=[49.99, 52.50, 52.50, 49.99]))
    assert state.limit[1:, 0].tolist() == [0, LIMIT_UP, LIMIT_UP, 0]
    assert not state.paused.any()


def test_a_replay_across_amendment_18_applies_each_days_table():
    # Friday 21 Feb 2020 (old plan: opening window doubled) and Monday 24 Feb 2020 (Amendment 18: not)
    days = [bars(d, [50.0, 50.0], start="09:35", flat=True, trades=1) for d in ("2020-02-21", "2020-02-24")]
    grid = build_grid(with_prior_close(pl.concat(days), "2020-02-20", 50.0))
    width = (luld_state(grid).upper - luld_state(grid).lower)[:, 0] / 2
    assert width[1:].tolist() == pytest.approx([5.0, 5.0, 2.5, 2.5])  # tier 1, $50: 2 x 5% then 5%


def _minute_bars(highs=None, lows=None, bids=None, asks=None, n=8, day="2021-03-01", tier=1, start="10:00"):
    """Tier 1, prior close $50 (bands 47.50 / 52.50), minute bars from 10:00 trading flat at $50."""
    frame = bars(day, np.full(n, 50.0), start=start, flat=True, tier=tier, bid=49.99 if bids is None else bids,
                 ask=50.01 if asks is None else asks)
    if highs is not None:
        frame = frame.with_columns(high=pl.Series(np.asarray(highs, dtype=float)))
    if lows is not None:
        frame = frame.with_columns(low=pl.Series(np.asarray(lows, dtype=float)))
    prior = {"2021-03-01": "2021-02-26", "2013-05-01": "2013-04-30", "2013-09-03": "2013-08-30",
             "2014-03-03": "2014-02-28"}[day]
    return build_grid(with_prior_close(frame, prior, 50.0))


def test_a_bar_trading_through_the_band_pauses_even_when_its_closing_quote_is_back_inside():
    # 10:01 bar trades up to 53.00 through the 52.50 band in force before it; quotes never leave 49.99/50.01
    state = luld_state(_minute_bars(highs=[50, 53.0, 50, 50, 50, 50, 50, 50]))
    # pause from 10:01:15 to 10:06:15: quotes 10:02 .. 10:06 paused, 10:07 reopens
    assert state.paused[1:, 0].tolist() == [False, True, True, True, True, True, False, False]
    assert state.limit[2, 0] == LIMIT_UP and state.counts() == {"limit_states": 1, "pauses": 1}


def test_a_bar_touching_the_band_enters_a_limit_state_and_pauses_only_if_the_quote_stays_there():
    touched = luld_state(_minute_bars(lows=[50, 47.50, 50, 50, 50, 50, 50, 50]))
    assert touched.limit[1:, 0].tolist() == [0, LIMIT_DOWN, 0, 0, 0, 0, 0, 0] and not touched.paused.any()
    asks = [50.01, 47.50, 50.01, 50.01, 50.01, 50.01, 50.01, 50.01]  # the 10:01 bar closes with the offer at the band
    stuck = luld_state(_minute_bars(lows=[50, 47.50, 50, 50, 50, 50, 50, 50], asks=asks,
                                    bids=[a - 0.02 for a in asks]))
    assert stuck.paused[2, 0] and stuck.limit[2, 0] == LIMIT_DOWN  # limit state since 10:01 > 15 s at 10:02


def test_a_two_bar_spike_is_tested_before_it_moves_the_reference():
    # +9% then +17.5% on heavy trading: each bar against the band set before it (52.50, then the 5-minute mean)
    frame = bars("2021-03-01", [50.0, 54.5, 58.75, 58.75], start="10:00", trades=[10, 500, 500, 10])
    state = luld_state(build_grid(with_prior_close(frame, "2021-02-26", 50.0)))
    assert state.paused[2, 0]


@pytest.mark.parametrize(("day", "tier", "at", "half_width"), [
    ("2013-05-01", 1, "09:40", None),  # Phase I: no bands before 9:45 ...
    ("2013-05-01", 1, "10:00", 2.50),  # ... Tier 1 at 5%, never doubled
    ("2013-05-01", 2, "10:00", None),  # ... and no Tier 2 at all
    ("2013-05-01", 1, "15:40", None),  # ... nor after 15:30
    ("2013-09-03", 2, "10:00", 5.00),  # Phase II: Tier 2 at 10%
    ("2013-09-03", 1, "09:35", 5.00),  # doubled in the opening window
    ("2013-09-03", 1, "15:40", 5.00),  # and from 15:35 ...
    ("2013-09-03", 1, "15:50", None),  # ... to 15:45, the end of the bands
    ("2014-03-03", 1, "15:50", 5.00),  # Phase II.B: the full day, the close doubled
])
def test_lulds_phase_in_by_effective_date(day, tier, at, half_width):
    grid = _minute_bars(n=1, day=day, tier=tier, start=at)
    state = luld_state(grid)
    width = (state.upper[1, 0] - state.lower[1, 0]) / 2
    if half_width is None:
        assert np.isnan(width) and not state.limit.any()
    else:
        assert width == pytest.approx(half_width)


def test_planted_spikes_trip_the_bands():
    eventful = MarketParams(crash_rate=0.3, spike_rate=0.6)
    reports = []
    for seed, params in [(0, None), (1, None), (2, None), (5, None), (1, eventful)]:
        spec = dict(n_symbols=10, start="2024-01-02", n_days=12 if params is None else 4, seed=seed, params=params)
        spikes = generate_events(**spec).filter(pl.col("kind") == "spike")
        grid = build_grid(generate_bars(**spec))
        reports.append(trips(luld_state(grid), grid, spikes))
        assert reports[-1].height == spikes.height
    report = pl.concat(reports)
    assert report.height >= 20 and (report["limit_state"] | report["paused"]).mean() >= 0.9
