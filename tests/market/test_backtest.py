import numpy as np
import polars as pl
import pytest

from dualhrq.market.backtest import SignalBacktest


def _frame(signal_a, signal_b, ret_a, ret_b):
    ts = np.array(["2020-01-02", "2020-01-03", "2020-01-06"], dtype="datetime64[us]")
    return pl.DataFrame({
        "ts": np.concatenate([ts, ts]), "symbol": ["A"] * 3 + ["B"] * 3,
        "signal": signal_a + signal_b, "next_return": ret_a + ret_b,
    })


def test_returns_costs_and_turnover_match_hand_computation():
    frame = _frame([1.0, 1.0, -0.5], [0.0, 0.5, 0.5], [0.01, -0.02, 0.03], [0.02, 0.01, -0.01])
    result = SignalBacktest(cost_bps=10.0).run(frame)
    # A: trades 1, 0, 1.5 ; B: trades 0, 0.5, 0   (cost 10 bp of traded notional)
    gross = np.array([(0.01 + 0.0) / 2, (-0.02 + 0.005) / 2, (-0.015 - 0.005) / 2])
    cost = np.array([(1.0 + 0.0) / 2, (0.0 + 0.5) / 2, (1.5 + 0.0) / 2]) * 1e-3
    np.testing.assert_allclose(result.returns["gross"].to_numpy(), gross)
    np.testing.assert_allclose(result.returns["cost"].to_numpy(), cost)
    np.testing.assert_allclose(result.net, gross - cost)
    assert result.turnover == pytest.approx((1 + 0 + 1.5 + 0 + 0.5 + 0) / 6)
    net = gross - cost
    assert result.sharpe == pytest.approx(net.mean() / net.std(ddof=1) * np.sqrt(252))


def test_signals_are_clipped_to_unit_positions():
    frame = _frame([3.0, 3.0, 3.0], [-2.0, -2.0, -2.0], [0.01] * 3, [0.01] * 3)
    result = SignalBacktest(cost_bps=0.0).run(frame)
    np.testing.assert_allclose(result.returns["gross"].to_numpy(), [0.0, 0.0, 0.0])


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="next_return"):
        SignalBacktest().run(pl.DataFrame({"ts": [1], "symbol": ["A"], "signal": [1.0]}))
