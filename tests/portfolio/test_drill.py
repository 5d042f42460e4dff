"""The kill-switch drill: the default limits stop the planted crash; limits wider than the crash do not trip."""

from __future__ import annotations

import math

from dualhrq.portfolio.drill import crash_drill
from dualhrq.risk.killswitch import KillSwitch


def test_the_desk_limits_trip_on_the_planted_crash_and_flatten_the_book():
    got = crash_drill(KillSwitch(daily_loss=0.03, drawdown=0.15), weight=0.5)
    assert got["drill_tripped"] == 1.0
    assert got["drill_bars_to_flat"] >= 1
    # half the capital long, tripped near a 3% loss, sold into a falling market: the loss stays near the limit,
    # far below the 16% the session's fall would have cost
    assert 0.03 <= got["drill_loss"] < 0.04


def test_limits_wider_than_the_crash_never_trip():
    got = crash_drill(KillSwitch(daily_loss=None, drawdown=0.5), weight=0.5)
    assert got["drill_tripped"] == 0.0 and math.isnan(got["drill_bars_to_flat"])
    assert 0.15 < got["drill_loss"] < 0.17  # held through the fall: 0.5 x (1 - 0.999^389)
