"""The scenario library: each named market, over three seeds, gives its expected rule outcome."""

import numpy as np
import pytest

from dualhrq.market.audit import recompute
from dualhrq.market.costs import CostModel
from dualhrq.market.engine import replay
from dualhrq.market.grid import build_grid

from .scenarios import SCENARIOS

FREE = CostModel(slippage="none", commission_per_share=0.0, borrow_bps=0.0)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scenario_outcome(scenario, seed):
    frame = scenario.frame(np.random.default_rng(seed)).sort("ts")
    grid = build_grid(frame)
    rec = replay(grid, scenario.target(frame)[:, None], FREE)
    scenario.check(rec)
    audit = recompute(rec)
    assert audit.violations.height == 0
    np.testing.assert_array_equal(audit.paused, rec.rules.luld.paused)
