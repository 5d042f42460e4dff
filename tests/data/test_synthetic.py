"""The synthetic market keeps the shared bar contract and injects the events it promises."""

from __future__ import annotations

from datetime import date, time

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from dualhrq.config import build, compose_train, located
from dualhrq.data.schema import INTRADAY_BAR_SCHEMA
from dualhrq.data.synthetic import (
    MarketParams,
    generate_bars,
    generate_events,
    generate_option_chain,
    holidays,
    trading_calendar,
    write_bars,
)
from dualhrq.errors import ConfigError

EVENTFUL = MarketParams(crash_rate=0.15, spike_rate=0.15)


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    # spans Thanksgiving and Christmas 2024: holidays and two early closes
    return generate_bars(6, start="2024-11-25", n_days=25, seed=3, params=EVENTFUL).collect()


def test_nyse_2024_holidays_and_early_closes() -> None:
    # the 2024 NYSE calendar as published by the exchange
    assert holidays(2024) == {date(2024, 1, 1), date(2024, 1, 15), date(2024, 2, 19), date(2024, 3, 29),
                              date(2024, 5, 27), date(2024, 6, 19), date(2024, 7, 4), date(2024, 9, 2),
                              date(2024, 11, 28), date(2024, 12, 25)}
    cal = trading_calendar("2024-01-01", 252)
    assert cal.height == 252 and cal["date"][0] == date(2024, 1, 2) and cal["date"][-1] == date(2024, 12, 31)
    assert cal.filter("early_close")["date"].to_list() == [date(2024, 7, 3), date(2024, 11, 29),
                                                           date(2024, 12, 24)]
    # 2022: New Year on a Saturday is not observed; Christmas on a Sunday moves to Monday
    assert date(2021, 12, 31) not in holidays(2021) and date(2022, 12, 26) in holidays(2022)


def test_bars_follow_the_column_contract(bars: pl.DataFrame) -> None:
    assert bars.schema == pl.Schema(INTRADAY_BAR_SCHEMA)
    assert bars.equals(bars.sort("symbol", "ts"))
    assert bars.select(pl.struct("symbol", "ts").is_unique().all()).item()
    minutes = bars.group_by(day=pl.col("ts").dt.date()).agg(pl.col("ts").dt.time().min().alias("first"),
                                                            pl.col("ts").dt.time().max().alias("last"))
    early = {date(2024, 11, 29), date(2024, 12, 24)}
    for day, first, last in minutes.iter_rows():
        assert day.weekday() < 5 and day not in holidays(2024)
        assert first == time(9, 30) and last == (time(12, 59) if day in early else time(15, 59))
    per_day = bars.group_by("symbol", day=pl.col("ts").dt.date()).len()
    assert set(per_day["len"]) == {210, 390}
    assert set(bars["luld_tier"]) == {1, 2}


def test_prices_and_quotes_are_consistent(bars: pl.DataFrame) -> None:
    b = {c: bars[c].to_numpy() for c in bars.columns if c not in ("ts", "symbol")}
    assert (b["low"] > 0).all() and (b["bid"] > 0).all()
    assert (b["low"] <= np.minimum(b["open"], b["close"])).all()
    assert (b["high"] >= np.maximum(b["open"], b["close"])).all()
    assert (b["bid"] < b["ask"]).all()
    # the close is the last trade, at the bid or the ask, on a cent grid
    assert ((b["close"] == b["bid"]) | (b["close"] == b["ask"])).all()
    np.testing.assert_allclose(np.round(b["ask"] * 100), b["ask"] * 100, atol=1e-6)
    assert (b["volume"] >= 100).all() and (b["trades"] >= 1).all()
    assert (b["bid_size"] >= 100).all() and (b["ask_size"] >= 100).all()


def test_same_seed_same_market_and_a_symbol_does_not_depend_on_how_many(bars: pl.DataFrame) -> None:
    again = generate_bars(6, start="2024-11-25", n_days=25, seed=3, params=EVENTFUL).collect()
    assert_frame_equal(bars, again)
    fewer = generate_bars(2, start="2024-11-25", n_days=25, seed=3, params=EVENTFUL).collect()
    assert_frame_equal(fewer, bars.filter(pl.col("symbol").is_in(["SYN000", "SYN001"])))
    other = generate_bars(2, start="2024-11-25", n_days=25, seed=4, params=EVENTFUL).collect()
    assert not np.allclose(other["close"].to_numpy(), fewer["close"].to_numpy())


def test_symbols_move_together() -> None:
    bars = generate_bars(6, n_days=10, seed=3).collect()  # default event rates: rare enough not to swamp
    wide = bars.select("ts", "symbol", r=(pl.col("bid") + pl.col("ask")).log().diff().over("symbol"))
    returns = wide.pivot("symbol", index="ts", values="r").drop("ts").drop_nulls().to_numpy()
    corr = np.corrcoef(returns.T)
    assert corr[np.triu_indices(len(corr), 1)].mean() > 0.2


def test_every_crash_takes_the_price_10pct_below_the_prior_close(bars: pl.DataFrame) -> None:
    events = generate_events(6, start="2024-11-25", n_days=25, seed=3, params=EVENTFUL)
    crashes = events.filter(pl.col("kind") == "crash")
    assert crashes.height >= 5
    daily = (bars.group_by("symbol", date=pl.col("ts").dt.date(), maintain_order=True)
             .agg(pl.col("close").last().alias("last"), pl.col("close").min().alias("lowest"))
             .with_columns(prior=pl.col("last").shift(1).over("symbol")))
    hit = crashes.join(daily, on=["symbol", "date"]).drop_nulls("prior")
    assert hit.height >= 4 and (hit["lowest"] / hit["prior"] <= 0.9).all()


def test_every_spike_moves_more_than_its_luld_band_within_five_minutes(bars: pl.DataFrame) -> None:
    spikes = generate_events(6, start="2024-11-25", n_days=25, seed=3, params=EVENTFUL).filter(
        pl.col("kind") == "spike")
    assert spikes.height >= 5
    for symbol, ts in spikes.select("symbol", "ts").iter_rows():
        one = bars.filter(pl.col("symbol") == symbol)
        row = one["ts"].search_sorted(ts)
        mid = ((one["bid"] + one["ask"]) / 2).to_numpy()
        band = 0.05 if one["luld_tier"][0] == 1 else 0.10
        assert np.abs(np.log(mid[row : row + 3] / mid[row - 1])).max() > band


def test_the_scan_is_lazy_and_honours_projection_filter_and_limit() -> None:
    scan = generate_bars(4, n_days=2, seed=1)
    assert scan.collect_schema() == pl.Schema(INTRADAY_BAR_SCHEMA)
    full = scan.collect()
    one = scan.filter(pl.col("symbol") == "SYN002").select("ts", "close").collect()
    assert_frame_equal(one, full.filter(pl.col("symbol") == "SYN002").select("ts", "close"))
    assert scan.head(500).collect().height == 500


def test_written_tree_reads_back(tmp_path) -> None:
    scan = write_bars(tmp_path, 3, n_days=2, seed=1)
    assert sorted(p.parent.name for p in tmp_path.rglob("*.parquet")) == [
        "symbol=SYN000", "symbol=SYN001", "symbol=SYN002"]
    assert_frame_equal(scan.collect().sort("symbol", "ts"), generate_bars(3, n_days=2, seed=1).collect())


@pytest.mark.parametrize("kwargs,field", [
    (dict(n_symbols=0), "n_symbols"),
    (dict(n_days=-2), "n_days"),
    (dict(seed=-1), "seed"),
    (dict(start="2024-13-01"), "start"),
])
def test_impossible_settings_are_config_errors(kwargs, field) -> None:
    with pytest.raises(ConfigError, match=rf"^{field}\b") as err:
        generate_bars(**kwargs)
    assert err.value.field == field
    with pytest.raises(ConfigError, match=r"^jump_rate must be a number in \[0, 1\], got 2\."):
        MarketParams(jump_rate=2)


@pytest.mark.parametrize("override,message", [
    ("data.source.n_days=0", r"^data\.source\.n_days must be a positive integer, got 0\."),
    ("data.source.start=2024-13-01", r"^data\.source\.start='2024-13-01' is not an ISO date"),
])
def test_the_configured_source_is_named_by_its_config_path(override, message) -> None:
    cfg = compose_train(["data=synthetic_intraday", override])
    with pytest.raises(ConfigError, match=message):
        with located(cfg.data.source):
            build(cfg.data.source)()


def test_option_chain_follows_the_contract_and_has_no_static_arbitrage_in_prices() -> None:
    bars = generate_bars(2, n_days=2, seed=1).collect()
    chain = generate_option_chain(bars, seed=1)
    assert chain.schema == pl.Schema({
        "date": pl.Date, "symbol": pl.String, "expiry": pl.Date, "tau": pl.Float64, "strike": pl.Float64,
        "right": pl.String, "underlying": pl.Float64, "rate": pl.Float64, "iv": pl.Float64, "price": pl.Float64})
    assert chain.height == 2 * 2 * 4 * 11 * 2 and set(chain["right"]) == {"C", "P"}
    closes = bars.group_by("symbol", date=pl.col("ts").dt.date()).agg(pl.col("close").last())
    joined = chain.join(closes, on=["symbol", "date"])
    assert (joined["underlying"] == joined["close"]).all()
    assert (chain["expiry"] > chain["date"]).all() and (chain["tau"] > 0).all()
    for _, calls in chain.filter(pl.col("right") == "C").group_by("date", "symbol", "expiry"):
        price, strike = calls["price"].to_numpy(), calls["strike"].to_numpy()
        slope = np.diff(price) / np.diff(strike)
        assert (slope < 0).all() and (slope > -1).all() and (np.diff(slope) > 0).all()  # monotone, convex
