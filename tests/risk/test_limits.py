"""Pre-trade limits on hand-computed books of three symbols, and the Greek limits against finite differences."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import polars as pl
import pytest

from dualhrq.errors import ConfigError, DataError
from dualhrq.primitives.bsm import bsm_greeks, bsm_price
from dualhrq.risk.limits import LIMITS, GreekLimits, PreTradeLimits, average_daily_volume

CAPITAL = 1_000_000.0
MID = np.array([100.0, 50.0, 20.0])  # symbols A, B, C: 1,000 shares are 10%, 5%, 2% of the capital


def _check(limits: PreTradeLimits, target, mid=None, day=None, volume=None):
    target = np.asarray(target, dtype=float)
    T, N = target.shape
    mid = np.broadcast_to(MID, (T, N)) if mid is None else np.asarray(mid, dtype=float)
    day = np.zeros(T, dtype=int) if day is None else np.asarray(day)
    volume = np.full((T, N), 1e9) if volume is None else np.asarray(volume, dtype=float)
    return limits.check(target, mid, day, volume, CAPITAL)


def _rejected(result) -> list[tuple[int, int, str]]:
    return [(b, s, lim) for b, s, lim in result.rejections.select("bar", "symbol", "limit").iter_rows()]


nan = np.nan


def test_max_position_rejects_the_share_above_and_passes_the_limit_itself():
    # A: 2,500 x $100 = 25% of the capital (passes), 2,501 = 25.01% (rejected, 2,500 stays in force)
    result = _check(PreTradeLimits(max_position=0.25), [[2_500, 0, 0], [2_501, 0, 0], [nan, 0, 0]])
    assert _rejected(result) == [(1, 0, "max_position")]
    assert result.rejections["value"].item() == pytest.approx(0.2501)
    assert result.target[:, 0].tolist()[:2] == [2_500, 2_500] and np.isnan(result.target[2, 0])


def test_max_gross_takes_the_decisions_of_a_bar_in_symbol_order():
    # bar 0: A 50% + B 30% + C 20% = 100% exactly (all pass); bar 1: C one share more (100.002%, rejected)
    # bar 2: A to 60% and B to 50% together: A (gross 110%) is taken first and rejected; B (120%) too
    # bar 3: A to 60% and B to 0: A is still taken first (110%, rejected again), then B (70%, passes)
    # bar 4: A to 60% once more: 80% (passes); A's request was held back two bars, one rejection
    limits = PreTradeLimits(max_gross=1.0)
    result = _check(limits, [[5_000, 6_000, 10_000], [5_000, 6_000, 10_001], [6_000, 10_000, 10_000],
                             [6_000, 0, 10_000], [6_000, 0, 10_000]])
    assert _rejected(result) == [(1, 2, "max_gross"), (2, 0, "max_gross"), (2, 1, "max_gross")]
    assert result.rejections["value"].to_list() == pytest.approx([1.00002, 1.1, 1.2])
    assert result.rejections["bars"].to_list() == [1, 2, 1]
    assert result.target[1:].tolist() == [[5_000, 6_000, 10_000], [5_000, 6_000, 10_000], [5_000, 0, 10_000],
                                          [6_000, 0, 10_000]]
    # the same bar, in symbol order: B's 50% is checked after A's 60% went through
    both = _check(limits, [[6_000, 10_000, 0]])
    assert _rejected(both) == [(0, 1, "max_gross")] and both.target[0].tolist() == [6_000, 0, 0]


def test_a_request_refused_bar_after_bar_is_one_rejection_until_it_changes_or_pauses():
    # A asks for 30% (over 25%) at bars 0-2, 29% at bar 3, nothing at bar 4, 29% again at bar 5
    target = [[3_000, 0, 0], [3_000, 0, 0], [3_000, 0, 0], [2_900, 0, 0], [nan, 0, 0], [2_900, 0, 0]]
    result = _check(PreTradeLimits(max_position=0.25), target)
    assert result.rejections.select("bar", "bars").rows() == [(0, 3), (3, 1), (5, 1)]
    assert np.nan_to_num(result.target[:, 0], nan=-1).tolist() == [0, 0, 0, 0, -1, 0]


def test_max_net_counts_longs_against_shorts():
    # A +50%, B -30%: net 20%; C +20%: net 40%; A to +61%: net 51% > 50% (rejected); A to +60%: 50% (passes)
    result = _check(PreTradeLimits(max_net=0.5), [[5_000, -6_000, 0], [5_000, -6_000, 10_000],
                                                  [6_100, -6_000, 10_000], [6_000, -6_000, 10_000]])
    assert _rejected(result) == [(2, 0, "max_net")] and result.rejections["value"].item() == pytest.approx(0.51)
    assert result.target[3, 0] == 6_000


def test_max_concentration_applies_from_min_names_names():
    # A 30%, B 10%: two names, the limit does not apply; C 5% makes three: A is 30/45 = 67% of gross (rejected);
    # C 20%: A is 30/60 = 50% of gross, the limit itself (passes)
    limits = PreTradeLimits(max_concentration=0.5, min_names=3)
    result = _check(limits, [[3_000, 2_000, 0], [3_000, 2_000, 2_500], [3_000, 2_000, 10_000]])
    assert _rejected(result) == [(1, 2, "max_concentration")]
    assert result.rejections["value"].item() == pytest.approx(0.3 / 0.45)
    assert result.target[2].tolist() == [3_000, 2_000, 10_000]


def test_max_strategy_gross_bounds_this_books_gross():
    limits = PreTradeLimits(max_strategy_gross={"book_b": 0.5, "book_a": 2.0}, strategy="book_b")
    target = [[5_000, 0, 0], [5_000, 1, 0]]  # 50%, then one $50 share more
    assert _rejected(_check(limits, target)) == [(1, 1, "max_strategy_gross")]
    other = PreTradeLimits(max_strategy_gross={"book_b": 0.5, "book_a": 2.0}, strategy="book_a")
    assert _check(other, target).rejections.height == 0


def test_a_decision_that_trims_a_breach_passes_and_one_that_deepens_it_does_not():
    # A 50% + B 50% = 100%; A's mid rises to $120: the book is at 110% without a decision.
    # B to 45% leaves 105% (over the limit, but less: passes); C one share more leaves 105.002% (rejected)
    mid = [[100, 50, 20], [120, 50, 20], [120, 50, 20]]
    result = _check(PreTradeLimits(max_gross=1.0), [[5_000, 10_000, 0], [5_000, 9_000, 0], [5_000, 9_000, 1]],
                    mid=mid)
    assert _rejected(result) == [(2, 2, "max_gross")]
    assert result.rejections["value"].item() == pytest.approx(1.05002)


def test_a_decision_is_named_by_the_first_limit_it_breaches():
    limits = PreTradeLimits(max_position=0.25, max_gross=0.3)
    result = _check(limits, [[2_000, 0, 0], [3_000, 0, 0], [2_000, 4_000, 0]])  # 30% breaches both
    assert _rejected(result) == [(1, 0, "max_position"), (2, 1, "max_gross")]
    assert result.counts == {**dict.fromkeys(LIMITS, 0), "max_position": 1, "max_gross": 1}


def _adv_market():
    """Sessions 0, 1, 2 of two bars each; A trades 2,000 then 4,000 shares a day, C has no bar in session 1."""
    day = np.array([0, 0, 1, 1, 2, 2])
    volume = np.array([[1_000, 500, 10], [1_000, 500, 10], [3_000, 500, nan], [1_000, 500, nan],
                       [7, 7, 7], [7, 7, 7]], dtype=float)
    return day, volume


def test_adv_is_the_mean_of_the_previous_sessions_only():
    day, volume = _adv_market()
    adv = average_daily_volume(day, volume, sessions=2)
    assert np.isnan(adv[:2]).all()  # no previous session
    assert adv[2:4, 0].tolist() == [2_000, 2_000] and adv[4:, 0].tolist() == [3_000, 3_000]
    assert adv[4, 2] == 20  # C's one session with bars
    one = average_daily_volume(day, volume, sessions=1)[4]
    assert one[:2].tolist() == [4_000, 1_000] and np.isnan(one[2])  # C had no bar in the one session looked at


def test_max_adv_share_rejects_the_order_above_five_percent_of_adv():
    day, volume = _adv_market()
    limits = PreTradeLimits(max_adv_share=0.05, adv_days=2)
    # session 2: A's ADV is 3,000, so 150 shares are 5% (pass) and a further 151 (an order of 151) are not;
    # session 0 has no history: any order is rejected (value inf)
    target = [[10, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0], [150, 0, 0], [301, 0, 0]]
    result = _check(limits, target, day=day, volume=volume)
    assert _rejected(result) == [(0, 0, "max_adv_share"), (5, 0, "max_adv_share")]
    assert result.rejections["value"].to_list() == [math.inf, pytest.approx(151 / 3_000)]
    # today's volume does not change today's verdict
    for today in (0.0, 1e12):
        moved = volume.copy()
        moved[4:] = today
        again = _check(limits, target, day=day, volume=moved)
        assert again.rejections.equals(result.rejections)


def test_the_rejection_frame_names_the_bar_time_and_symbol():
    result = _check(PreTradeLimits(max_position=0.25), [[0, 0, 0], [0, 0, 12_501]])
    ts = np.array([datetime(2024, 3, 5, 10, 0), datetime(2024, 3, 5, 10, 1)], dtype="datetime64[us]")
    frame = result.frame(ts, ("A", "B", "C"))
    assert frame.columns == ["ts", "symbol", "limit", "value", "bound", "bars"]
    assert frame.row(0) == (datetime(2024, 3, 5, 10, 1), "C", "max_position", pytest.approx(0.25002), 0.25, 1)


def test_marks_are_carried_over_bars_without_a_quote_and_a_decision_needs_one():
    mid = [[100, 50, nan], [nan, 50, 20], [nan, 50, 20]]
    result = _check(PreTradeLimits(max_gross=0.5), [[5_000, 0, 0], [5_000, 0, 0], [5_000, 0, 1]], mid=mid)
    assert _rejected(result) == [(2, 2, "max_gross")]  # A still valued at $100 where it has no quote
    with pytest.raises(DataError, match="before its first quote"):
        _check(PreTradeLimits(max_gross=0.5), [[0, 0, 1]], mid=[[100, 50, nan]])


@pytest.mark.parametrize("field", ["max_position", "max_gross", "max_net", "max_adv_share"])
@pytest.mark.parametrize("value", [0.0, -0.1])
def test_zero_or_negative_limits_are_refused_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=rf"^{field} must be a finite positive number or null, got {value}\.$"):
        PreTradeLimits(**{field: value})


@pytest.mark.parametrize("kwargs,message", [
    ({"max_concentration": 1.5}, r"^max_concentration must be a number in \(0, 1\] or null, got 1\.5\.$"),
    ({"max_concentration": 0.15, "min_names": 5}, r"^max_concentration must be >= 1 / min_names \(0\.2\)"),
    ({"min_names": 0}, r"^min_names must be a positive integer, got 0\.$"),
    ({"adv_days": 0}, r"^adv_days must be a positive integer, got 0\.$"),
    ({"max_strategy_gross": {"book_b": -1.0}}, r"^max_strategy_gross\.book_b must be a finite positive number"),
    ({"max_strategy_gross": {"book_a": 1.0}}, r"^max_strategy_gross must be a mapping with an entry for strategy "
                                              r"'book_b'.*Fix: add one"),
])
def test_contradictory_settings_are_refused_with_one_message(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        PreTradeLimits(**kwargs)


def test_inputs_of_the_wrong_shape_are_refused():
    with pytest.raises(DataError, match="mid must have the target's shape"):
        PreTradeLimits(max_gross=1.0).check(np.zeros((2, 3)), np.ones((2, 2)), np.zeros(2), np.ones((2, 3)), 1.0)
    with pytest.raises(DataError, match="day must be a non-decreasing"):
        PreTradeLimits(max_gross=1.0).check(np.zeros((2, 3)), np.ones((2, 3)), np.array([1, 0]), np.ones((2, 3)),
                                            1.0)


# ---------------------------------------------------------------- Greek limits


def _straddle(contracts: float = 10.0):
    """A long ATM straddle on $100 (3 months, 20% vol) with its BSM Greeks and the delta hedge, and a second
    symbol's short call."""
    spot = np.array([100.0, 100.0, 40.0])
    strike = np.array([100.0, 100.0, 42.0])
    call = np.array([True, False, True])
    q = np.array([contracts, contracts, -5.0])
    g = bsm_greeks(spot, strike, 0.25, 0.01, 0.2, call)
    hedge_x = -float(round(float((q[:2] * g["delta"][:2]).sum()) * 100))
    hedge_y = 200.0
    legs = pl.DataFrame({"symbol": ["X", "X", "Y"], "contracts": q, "delta": g["delta"], "gamma": g["gamma"],
                         "vega": g["vega"], "underlying": spot, "hedge": [hedge_x, hedge_x, hedge_y]})
    return legs, (spot, strike, call, q, np.array([hedge_x, hedge_x, hedge_y]))


def test_dollar_greeks_match_finite_differences_of_the_bsm_price():
    legs, (spot, strike, call, q, hedge) = _straddle()

    def value(s_scale=1.0, vol=0.2):
        return float((q * 100 * bsm_price(spot * s_scale, strike, 0.25, 0.01, vol, call)).sum())

    h = 1e-4
    per_share = [0, 2]  # one hedge per symbol
    delta = (value(1 + h) - value(1 - h)) / (2 * h) * 0.01 + float((hedge[per_share] * spot[per_share]).sum()) * 0.01
    vega = (value(vol=0.2 + 1e-4) - value(vol=0.2 - 1e-4)) / 2e-4 * 0.01
    # a 1% move's gamma P&L, Gamma (0.01 S)^2 / 2, in the second difference of the value along relative moves
    gamma = (value(1 + 1e-3) - 2 * value() + value(1 - 1e-3)) / 1e-6 * 0.5 * 1e-4
    exposure = GreekLimits().exposures(legs)
    assert exposure["delta"] == pytest.approx(delta, rel=1e-5)
    assert exposure["vega"] == pytest.approx(vega, rel=1e-6)
    assert exposure["gamma"] == pytest.approx(gamma, rel=1e-4)


def test_greek_limits_reject_only_the_breached_ones_and_pass_the_limit_itself():
    legs, _ = _straddle()
    e = GreekLimits().exposures(legs)
    at = GreekLimits(max_delta=abs(e["delta"]), max_vega=abs(e["vega"]), max_gamma=abs(e["gamma"]))
    assert at.check_greeks(legs).height == 0
    below = GreekLimits(max_delta=abs(e["delta"]) * 2, max_vega=abs(e["vega"]) * 0.99, max_gamma=abs(e["gamma"]) / 2)
    out = below.check_greeks(legs)
    assert out["limit"].to_list() == ["max_vega", "max_gamma"]
    assert out["value"].to_list() == pytest.approx([abs(e["vega"]), abs(e["gamma"])])


def test_greek_limits_refuse_bad_settings_and_legs():
    with pytest.raises(ConfigError, match=r"^max_vega must be a finite positive number or null, got 0\.0\.$"):
        GreekLimits(max_vega=0.0)
    legs, _ = _straddle()
    with pytest.raises(DataError, match=r"lack columns \['hedge'\]"):
        GreekLimits().check_greeks(legs.drop("hedge"))
    with pytest.raises(DataError, match="different hedges"):
        GreekLimits().check_greeks(legs.with_columns(hedge=pl.Series([1.0, 2.0, 3.0])))
