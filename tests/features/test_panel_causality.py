"""A stock panel's features at date t read nothing after t, for any symbol; cross-sectional figures of a date
are taken over the symbols with data on it, and a stock listed late joins when its closes start."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from scipy.stats import rankdata

from dualhrq.data.samples import build_samples
from dualhrq.features.engine import CloseFeatureSpec, compute_features, feature_names, input_lookback

N_DAYS, LATE_START, SEQ = 240, 120, 8
SYMBOLS = ("AAA", "BBB", "CCC", "DDD", "LATE")
SPEC = CloseFeatureSpec(short=3, medium=10, long=30, regime_window=20)
DAYS = [datetime(2021, 1, 1) + timedelta(days=i) for i in range(N_DAYS)]


def _panel() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Five stocks driven by one index; LATE has closes from day 120 on only."""
    rng = np.random.default_rng(7)
    market = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal(N_DAYS)))
    frames = []
    for k, name in enumerate(SYMBOLS):
        r = (0.6 + 0.3 * k) * np.diff(np.log(market), prepend=np.log(100)) + 0.012 * rng.standard_normal(N_DAYS)
        first = LATE_START if name == "LATE" else 0
        frames.append(pl.DataFrame({"ts": DAYS[first:], "symbol": name, "close": 20 * np.exp(np.cumsum(r))[first:]}))
    return pl.concat(frames), pl.DataFrame({"ts": DAYS, "close": market})


@pytest.fixture(scope="module")
def full() -> pl.DataFrame:
    bars, market = _panel()
    return compute_features(bars, SPEC, market=market)


@pytest.mark.parametrize("cut", [LATE_START - 1, LATE_START, LATE_START + 5, 200])
def test_truncating_the_panel_after_t_leaves_every_feature_at_t_unchanged(full, cut):
    bars, market = _panel()
    t = DAYS[cut]
    short = compute_features(bars.filter(pl.col("ts") <= t), SPEC, market=market.filter(pl.col("ts") <= t))
    assert_frame_equal(short, full.filter(pl.col("ts") <= t))
    # the latest date is not all warm-up: it carries real values for every listed symbol
    last = short.filter(pl.col("ts") == t).drop_nulls()
    assert last.height == (4 if cut < LATE_START + 30 else 5)  # LATE warm from its bar 30


def _wide(frame: pl.DataFrame, column: str) -> np.ndarray:
    """[symbol, day] array of ``column``, NaN where a symbol has no row or a null."""
    table = frame.pivot(on="symbol", index="ts", values=column).sort("ts")
    return np.stack([table[s].fill_null(np.nan).to_numpy() for s in SYMBOLS])


def test_ranks_and_dispersion_of_a_date_are_over_the_symbols_with_data_on_it(full):
    bars, _ = _panel()
    closes = _wide(bars, "close")
    returns = np.diff(np.log(closes), axis=1, prepend=np.nan)  # [symbol, day], NaN before a first close
    mom = np.log(closes / np.roll(closes, 10, axis=1))
    mom[:, :10] = np.nan
    got = _wide(full, "rank_mom_10")
    for day in (LATE_START - 1, LATE_START + 5, LATE_START + 10, 230):
        have = np.isfinite(mom[:, day])
        assert have.sum() == (5 if day >= LATE_START + 10 else 4)  # LATE's 10-day momentum from its 11th close
        np.testing.assert_allclose(got[have, day], (rankdata(mom[have, day]) - 1) / (have.sum() - 1))
        assert np.isnan(got[~have, day]).all()
    disp = np.array([np.std(r[np.isfinite(r)], ddof=1) for r in returns.T[1:]])  # per day, over returns that exist
    expected = np.convolve(disp, np.ones(10) / 10, mode="valid")  # trailing mean of 10: day 10 onwards
    for day in (LATE_START + 1, LATE_START + 15, 230):
        assert _wide(full, "xs_dispersion_10")[0, day] == pytest.approx(expected[day - 10], rel=1e-9)


def test_a_stock_listed_late_enters_when_its_closes_start(full):
    late = full.filter(pl.col("symbol") == "LATE")
    assert late["ts"].min() == DAYS[LATE_START] and late.height == N_DAYS - LATE_START  # no rows made up before
    names, regime = feature_names(SPEC)
    samples = build_samples(full, names, regime, seq_len=SEQ, lookback=input_lookback(SPEC))
    first = {s: samples.t[samples.symbol_id == samples.symbols.index(s)].min() for s in SYMBOLS}
    # every input is warm from a symbol's own bar 30 (30-bar momentum and beta; 10-bar bipower volatility from
    # bar 11, z-scored over 20 of them), and a window takes 8 such bars: the first decision is its bar 37
    assert first["AAA"] == np.datetime64(DAYS[37]) and first["LATE"] == np.datetime64(DAYS[LATE_START + 37])
    # its windows and their lookback start no earlier than its first close
    assert samples.t0[samples.symbol_id == samples.symbols.index("LATE")].min() == np.datetime64(DAYS[LATE_START])
