import dataclasses
from datetime import date

import pytest

from dualhrq.errors import DataError
from dualhrq.market.rules import LULD_TABLES, SSR_RULES, luld_in_force, ssr_in_force


def test_each_day_gets_the_table_in_force_then():
    assert luld_in_force(date(2020, 2, 21)).double_opening is True  # Friday before Amendment 18
    assert luld_in_force(date(2020, 2, 24)).double_opening is False  # its effective date
    assert luld_in_force(date(2020, 2, 24)).closing_double_tier2_low_only is True
    assert luld_in_force(date(2013, 4, 8)) is LULD_TABLES[0]
    assert ssr_in_force(date(2024, 1, 2)).trigger_pct == 10


def test_the_plan_was_phased_in():
    phase1, phase2a, phase2b = (luld_in_force(date(2013, 8, 2)), luld_in_force(date(2013, 8, 5)),
                                luld_in_force(date(2014, 2, 24)))
    assert phase1.tiers == (1,) and not (phase1.double_opening or phase1.double_closing)
    assert phase2a.tiers == (1, 2) and phase2a.bands_until.total_seconds() == 15 * 60
    assert phase2b.bands_from.total_seconds() == 0 and phase2b.bands_until.total_seconds() == 0
    assert luld_in_force(date(2014, 2, 21)) is phase2a


def test_days_before_the_rules_existed_are_refused():
    with pytest.raises(DataError, match="LULD"):
        luld_in_force(date(2013, 4, 5))
    with pytest.raises(DataError, match="Rule 201"):
        ssr_in_force(date(2011, 2, 25))


def test_tables_are_immutable_and_ordered():
    with pytest.raises(dataclasses.FrozenInstanceError):
        LULD_TABLES[0].tier1_pct = 0.5  # type: ignore[misc]
    assert isinstance(LULD_TABLES, tuple) and isinstance(SSR_RULES, tuple)
    assert [t.effective for t in LULD_TABLES] == sorted(t.effective for t in LULD_TABLES)
