"""The U.S. market rules the strict simulator enforces, as immutable tables keyed by effective date.

Rules change by regulatory amendment, not by configuration: a replay of a
past day must apply the rules in force on that day. Each table is a frozen
dataclass; the versions of a rule form a tuple sorted by effective date, and
``*_in_force(day)`` picks the latest version effective on or before ``day``.
Nothing here is read from the Hydra config. Percentages are whole numbers and
prices are in units of $0.0001 (``ticks``), so the engine's arithmetic on
them is exact.

Sources:
- SEC Rule 201 (17 CFR 242.201, short sale price test), compliance date
  28 February 2011.
- Plan to Address Extraordinary Market Volatility (the LULD plan, SEC
  Release 34-67091, approved 31 May 2012), Appendix A (percentage
  parameters), Sections V-VII (limit states, pauses), and its phased start
  (Section VIII and the Participants' notices):

  * Phase I, 8 April 2013: Tier 1 NMS stocks only, bands from 9:45 to 15:30
    (Nasdaq Equity Technical Update 2013-13; the exchanges kept the opening
    and closing periods out), so no band ever doubles.
  * Phase II, 5 August 2013 (amendment filed 17 July 2013, Nasdaq Equity
    Regulatory Alert 2013-9): all NMS stocks, bands from 9:30 to 15:45, or
    15 minutes before an early close, doubled from 9:30 to 9:45 and from
    15:35 to 15:45 (Nasdaq Equity Trader Alert 2013-75). The exchanges rolled
    Tier 2 symbols in by groups until 8 December 2013; the table applies
    Tier 2 bands from the phase's start, not symbol by symbol.
  * Phase II.B, 24 February 2014 (Sixth Amendment, Nasdaq Equity Trader
    Alerts 2013-111 and 2014-17): the full trading day, 9:30 to 16:00 (or an
    early close), doubled in the first 15 and the last 25 minutes.
  * Eighteenth Amendment (noticed 18 December 2018, Release 34-84843), in
    effect from 24 February 2020: no doubling in the opening window; the
    closing-window doubling kept for Tier 1 and for Tier 2 stocks priced at or
    below $3.00.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time, timedelta

from dualhrq.errors import DataError


@dataclass(frozen=True)
class SSRRule:
    """Rule 201: a drop of ``trigger_pct`` percent below the prior close restricts short sales that day and the next."""

    effective: date
    trigger_pct: int = 10  # "decline ... by 10% or more from the prior day's closing price"


@dataclass(frozen=True)
class LULDTable:
    """One version of the LULD plan's parameters: Appendix A, the hours bands apply and the doubling windows."""

    effective: date
    tiers: tuple[int, ...] = (1, 2)  # the tiers the plan covers
    tier1_pct: int = 5  # Tier 1, previous close above $3.00
    tier2_pct: int = 10  # Tier 2, previous close above $3.00
    mid_pct: int = 20  # both tiers, previous close from $0.75 to $3.00 inclusive
    low_abs: int = 1_500  # both tiers, previous close below $0.75: the lesser of $0.15 ...
    low_pct: int = 75  # ... or 75%
    mid_floor: int = 7_500  # $0.75
    mid_cap: int = 30_000  # $3.00
    ref_window: timedelta = timedelta(minutes=5)  # reference price: mean of the trades of the preceding 5 minutes
    ref_move_pct: int = 1  # the reference price is updated only when it moves 1% or more
    limit_state_limit: timedelta = timedelta(seconds=15)  # a limit state not resolved within 15 s pauses trading
    pause: timedelta = timedelta(minutes=5)
    bands_from: timedelta = timedelta(0)  # bands apply from the open plus this ...
    bands_until: timedelta = timedelta(0)  # ... until the close minus this
    opening_window: timedelta = timedelta(minutes=15)  # 9:30-9:45
    closing_window: timedelta = timedelta(minutes=25)  # 3:35-4:00, or the last 25 minutes of an early close
    double_opening: bool = True
    double_closing: bool = True
    # closing-window doubling: for every stock (False) or only Tier 1 and Tier 2 at or below mid_cap (True)
    closing_double_tier2_low_only: bool = False


SSR_RULES: tuple[SSRRule, ...] = (SSRRule(effective=date(2011, 2, 28)),)
LULD_TABLES: tuple[LULDTable, ...] = (
    LULDTable(effective=date(2013, 4, 8), tiers=(1,), bands_from=timedelta(minutes=15),
              bands_until=timedelta(minutes=30), double_opening=False, double_closing=False),
    LULDTable(effective=date(2013, 8, 5), bands_until=timedelta(minutes=15)),
    LULDTable(effective=date(2014, 2, 24)),
    LULDTable(effective=date(2020, 2, 24), double_opening=False, closing_double_tier2_low_only=True),
)
MARKET_OPEN = time(9, 30)


def _in_force(tables: tuple, day: date, what: str):
    chosen = None
    for table in tables:
        if table.effective <= day:
            chosen = table
    if chosen is None:
        raise DataError(f"bars on {day}: no {what} rules were in force before {tables[0].effective}; "
                        "Fix: replay days from that date on.")
    return chosen


def ssr_in_force(day: date) -> SSRRule:
    """The Rule 201 version that applies on ``day``."""
    return _in_force(SSR_RULES, day, "SEC Rule 201")


def luld_in_force(day: date) -> LULDTable:
    """The LULD plan version that applies on ``day``."""
    return _in_force(LULD_TABLES, day, "LULD")
