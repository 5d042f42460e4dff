import math

import numpy as np
import pytest

from dualhrq.errors import ConfigError
from dualhrq.market.costs import CostModel, bar_volatility


def test_linear_and_square_root_impact_by_hand():
    q, v, sigma = np.array([1000.0, -4000.0]), np.array([10_000.0, 10_000.0]), np.array([0.002, 0.002])
    assert CostModel(slippage="linear", impact_coef=0.5).slip(q, v, sigma) == pytest.approx([0.05, 0.2])
    sqrt = CostModel(slippage="sqrt", impact_coef=0.5).slip(q, v, sigma)
    assert sqrt == pytest.approx([0.5 * 0.002 * math.sqrt(0.1), 0.5 * 0.002 * math.sqrt(0.4)])
    assert sqrt[1] / sqrt[0] == pytest.approx(2.0)  # square-root law: 4x the size, 2x the impact
    assert np.isnan(CostModel(slippage="linear").slip(q, np.array([0.0, 1.0]), sigma)[0])


def test_transient_impact_decays_exponentially():
    model = CostModel(slippage="exp_decay", impact_coef=0.5, decay_s=60.0)
    d = model.push(np.array([1000.0]), np.array([10_000.0]))  # +0.05
    d = d * model.decay(120.0)  # two decay times later
    assert d[0] == pytest.approx(0.05 * math.exp(-2))
    # each fill pays only its own impact; the displacement moves the quotes (the engine's job)
    assert model.slip(np.array([-1000.0]), np.array([10_000.0]), np.array([0.0]))[0] == pytest.approx(0.05)
    assert CostModel(slippage="sqrt").decay(10.0) == 0.0


def test_commission_and_borrow_by_hand():
    model = CostModel(commission_per_share=0.005, commission_bps=1.0, borrow_bps=252.0)
    assert model.commission(np.array([-200.0]), np.array([50.0]))[0] == pytest.approx(200 * 0.005 + 10_000 * 1e-4)
    assert model.borrow(np.array([10_000.0]), 3)[0] == pytest.approx(10_000 * 0.0252 * 3 / 360)  # Friday to Monday


def test_bar_volatility_matches_numpy_std():
    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (50, 2)), axis=0))
    vol = bar_volatility(close, 10)
    r = np.r_[0.0, np.diff(np.log(close[:, 0]))]
    assert vol[30, 0] == pytest.approx(np.std(r[21:31], ddof=1))
    assert vol[4, 0] == pytest.approx(np.std(r[:5], ddof=1))


@pytest.mark.parametrize(("field", "value"), [("slippage", "cubic"), ("impact_coef", -1.0), ("decay_s", 0.0),
                                              ("borrow_bps", float("nan")), ("vol_window", 1)])
def test_bad_cost_settings_are_refused(field, value):
    with pytest.raises(ConfigError, match=field):
        CostModel(**{field: value})
