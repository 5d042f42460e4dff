import math
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from dualhrq.errors import ConfigError, DataError
from dualhrq.market.grid import build_grid
from dualhrq.portfolio.book_b import EquityBook
from dualhrq.portfolio.transforms import transform_expr
from tests.market.conftest import bars


def _preds(signals: dict[str, list[float]]) -> pl.DataFrame:
    ts = [datetime(2024, 3, 5, 10, i) for i in range(len(next(iter(signals.values()))))]
    return pl.concat([pl.DataFrame({"ts": pl.Series(ts, dtype=pl.Datetime("us")), "symbol": s, "signal": v})
                      for s, v in signals.items()])


def _target(name: str, frame: pl.DataFrame, **kw) -> pl.DataFrame:
    return frame.sort("symbol", "ts").with_columns(transform_expr(name, **kw))


def test_cross_sectional_momentum_ranks_symbols_into_minus_one_to_one():
    out = _target("cross_sectional_momentum", _preds({"A": [0.3], "B": [-0.1], "C": [0.9], "D": [0.0]}))
    assert dict(zip(out["symbol"], out["target"], strict=True)) == pytest.approx(
        {"A": 1 / 3, "B": -1.0, "C": 1.0, "D": -1 / 3})
    assert out["target"].sum() == pytest.approx(0.0)


def test_mean_reversion_fades_the_signal_against_its_trailing_mean():
    s = [0.0, 0.2, 0.1, 0.5]
    out = _target("mean_reversion", _preds({"A": s}), window=3)
    z = -(0.5 - np.mean([0.2, 0.1, 0.5])) / np.std([0.2, 0.1, 0.5], ddof=1)
    assert out["target"][3] == pytest.approx(max(-1.0, z))
    assert out["target"][0] == 0.0  # one signal: no spread yet


def test_momentum_reversal_is_a_macd_of_the_signal():
    s = np.array([0.1, 0.2, 0.4, 0.4, -0.3])
    out = _target("momentum_reversal", _preds({"A": list(s)}), fast=2, slow=4)

    def ema(x, span):
        a, y = 2 / (span + 1), [x[0]]
        for v in x[1:]:
            y.append(a * v + (1 - a) * y[-1])
        return np.array(y)

    expected = np.tanh((ema(s, 2) - ema(s, 4)) / ema(np.abs(s), 4))
    assert out["target"].to_numpy() == pytest.approx(expected)
    assert out["target"][2] > 0 > out["target"][4]


def test_volatility_target_sizing_and_holding_until_t1():
    closes = 50 * np.exp(np.cumsum(np.tile([0.001, -0.001], 40)))
    grid = build_grid(bars("2024-03-05", closes, start="10:00"))
    book = EquityBook(vol_target=0.10, vol_window=10, bars_per_year=98_280, max_weight=1.0)
    t0 = grid.bar_ts[30:31]
    frame = pl.DataFrame({"ts": t0, "symbol": ["AAA"], "signal": [0.5], "t1": t0 + np.timedelta64(5, "m")})
    target = book.targets(frame, grid, capital=1e6)[:, 0]
    sigma = np.std(np.diff(np.log(closes))[21:31], ddof=1) * math.sqrt(98_280)
    shares = round(0.5 * 0.10 / sigma * 1e6 / grid.mid[30, 0])
    assert target[30] == shares and target[34] == shares
    assert target[29] == 0 and target[35] == 0  # flat before the decision and from t1 on


def test_decisions_hold_until_replaced_the_same_day_and_the_last_until_t1():
    closes = 50 * np.exp(np.cumsum(np.tile([0.001, -0.001], 30)))
    day1, day2 = bars("2024-03-05", closes, start="10:00"), bars("2024-03-06", closes, start="10:00")
    grid = build_grid(pl.concat([day1, day2]))
    at = [20, 40, 60 + 20]  # two decisions on day 1 (20 bars apart, t1 after 5 bars), one on day 2
    ts = grid.bar_ts[at]
    frame = pl.DataFrame({"ts": ts, "symbol": ["AAA"] * 3, "signal": [1.0, -1.0, 1.0],
                          "t1": ts + np.timedelta64(5, "m")})
    target = EquityBook(vol_window=10).targets(frame, grid, 1e6)[:, 0]
    assert (target[20:40] > 0).all() and (target[40:45] < 0).all()  # held across the gap to the next decision
    assert (target[45:80] == 0).all()  # the day's last decision ends at its t1: flat overnight
    assert (target[80:85] > 0).all() and (target[85:] == 0).all()


def test_almgren_chriss_slicing_works_a_change_over_the_slices():
    closes = 50 * np.exp(np.cumsum(np.tile([0.001, -0.001], 20)))
    grid = build_grid(bars("2024-03-05", closes, start="10:00"))
    frame = pl.DataFrame({"ts": grid.bar_ts[20:21], "symbol": ["AAA"], "signal": [1.0]})
    at_once = EquityBook(vol_window=10).targets(frame, grid, 1e6)[:, 0]
    book = EquityBook(vol_window=10, slices=4, risk_aversion=1.0, temporary_impact=1.0, schedule_sigma=1.0)
    sliced = book.targets(frame, grid, 1e6)[:, 0]
    w = book.schedule()
    assert w.sum() == pytest.approx(1.0) and np.all(np.diff(w) < 0)  # risk aversion front-loads
    full = at_once[20]
    assert full > 0 and sliced[19] == 0
    assert sliced[20:24].tolist() == [round(full * c) for c in np.cumsum(w)]
    assert sliced[30] == full


def test_decisions_off_the_market_bars_and_bad_settings_are_refused():
    grid = build_grid(bars("2024-03-05", np.full(5, 50.0), start="10:00"), bar=timedelta(minutes=1))
    frame = pl.DataFrame({"ts": [datetime(2024, 3, 5, 10, 0, 30)], "symbol": ["AAA"], "signal": [1.0]})
    with pytest.raises(DataError, match="not a bar"):
        EquityBook().targets(frame.with_columns(pl.col("ts").cast(pl.Datetime("us"))), grid, 1e6)
    with pytest.raises(ConfigError, match="transform"):
        EquityBook(transform="carry")
    with pytest.raises(ConfigError, match="vol_target"):
        EquityBook(vol_target=0.0)
    with pytest.raises(ConfigError, match="slow"):
        EquityBook(transform="momentum_reversal", fast=20, slow=5)
