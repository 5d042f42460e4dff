"""validate_bars: safe casts, the returned order, and one clear error per defect."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from dualhrq.data.schema import BAR_SCHEMA, validate_bars
from dualhrq.errors import DataError


def _days(*days: int) -> list[datetime]:
    return [datetime(2020, 1, d) for d in days]


def bars(**overrides: list) -> pl.DataFrame:
    """Two symbols interleaved in time (sorted within each symbol, as a feed delivers them)."""
    columns = {
        "ts": _days(2, 2, 3, 3, 6, 6),
        "symbol": ["B", "A", "B", "A", "B", "A"],
        "open": [10.0, 20.0, 11.0, 21.0, 12.0, 22.0],
        "high": [11.0, 21.0, 12.0, 22.0, 13.0, 23.0],
        "low": [9.0, 19.0, 10.0, 20.0, 11.0, 21.0],
        "close": [10.5, 20.5, 11.5, 21.5, 12.5, 22.5],
        "volume": [100.0, 200.0, 0.0, 210.0, 120.0, 220.0],
    }
    return pl.DataFrame(columns | overrides)


def test_valid_bars_come_back_in_schema_sorted_by_symbol_then_ts() -> None:
    out = validate_bars(bars(), source="t")
    assert out.schema == pl.Schema(BAR_SCHEMA)
    assert out["symbol"].to_list() == ["A"] * 3 + ["B"] * 3
    assert out.filter(pl.col("symbol") == "B")["close"].to_list() == [10.5, 11.5, 12.5]
    assert out["ts"].to_list()[:3] == [datetime(2020, 1, d) for d in (2, 3, 6)]


def test_safe_types_are_cast() -> None:
    raw = bars().with_columns(
        pl.col("ts").dt.date(),
        pl.col("symbol").cast(pl.Categorical),
        pl.col("open").cast(pl.Float32),
        pl.col("volume").cast(pl.Int64),
    )
    out = validate_bars(raw.lazy(), source="t")
    assert out.schema == pl.Schema(BAR_SCHEMA)
    assert out["ts"][0] == datetime(2020, 1, 2)
    assert out["volume"].sum() == 850.0


def test_column_order_of_the_input_does_not_matter() -> None:
    raw = bars()
    out = validate_bars(raw.select(reversed(raw.columns)), source="t")
    assert out.columns == list(BAR_SCHEMA)


NAN = float("nan")
BAD_INPUTS = {
    "missing": (
        bars().drop("volume", "low"),
        r"missing columns \['low', 'volume'\]; bars need exactly \['ts', 'symbol'",
    ),
    "extra": (bars().with_columns(adj_close=1.0), r"unexpected columns \['adj_close'\].*drop or"),
    "string price": (
        bars().with_columns(pl.col("close").cast(pl.String)),
        r"column 'close' has type String, expected Float64",
    ),
    "string ts": (
        bars().with_columns(pl.col("ts").cast(pl.String)),
        r"column 'ts' has type String.*str.to_datetime",
    ),
    "tz-aware ts": (
        bars().with_columns(pl.col("ts").dt.replace_time_zone("UTC")),
        r"column 'ts' has type .*UTC.*naive exchange-local",
    ),
    "int symbol": (bars(symbol=[1, 2, 1, 2, 1, 2]), r"column 'symbol' has type Int64.*strings"),
    "null close": (
        bars(close=[10.5, None, 11.5, 21.5, 12.5, 22.5]),
        r"column 'close' is null, NaN or infinite in 1 rows \(first at symbol='A', ts=2020-01-02",
    ),
    "nan volume": (
        bars(volume=[1.0, 1.0, 1.0, 1.0, NAN, 1.0]),
        r"column 'volume' is null, NaN or infinite in 1 rows \(first at symbol='B', ts=2020-01-06",
    ),
    "zero low": (
        bars(low=[9.0, 19.0, 0.0, 20.0, 11.0, 21.0]),
        r"column 'low' is not positive in 1 rows \(first at symbol='B', ts=2020-01-03",
    ),
    "negative volume": (bars(volume=[1.0, -1.0, 1, 1, 1, 1]), r"column 'volume' is negative"),
    "high below low": (
        bars(high=[11.0, 21.0, 9.5, 22.0, 13.0, 23.0]),
        r"column 'high' is below low in 1 rows \(first at symbol='B'",
    ),
    "null ts": (bars(ts=[None, *_days(2, 3, 3, 6, 6)]), r"column 'ts' has nulls"),
    "unsorted": (
        bars(ts=_days(2, 2, 6, 3, 3, 6)),
        r"go backwards within a symbol \(first at symbol='B', ts=2020-01-03.*"
        r"sort by symbol, ts before loading",
    ),
    "duplicate": (
        bars(ts=_days(2, 2, 3, 3, 3, 6)),
        r"duplicate \(symbol, ts\) row at symbol='B', ts=2020-01-03",
    ),
    "empty": (bars().clear(), r"no rows"),
}


@pytest.mark.parametrize("frame, message", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_raises_one_clear_error(frame: pl.DataFrame, message: str) -> None:
    with pytest.raises(DataError, match=r"^my_feed.csv: .*" + message):
        validate_bars(frame, source="my_feed.csv")



def test_close_only_bars_have_exactly_ts_symbol_close() -> None:
    frame = pl.DataFrame({"ts": [datetime(2020, 1, 1), datetime(2020, 1, 2)], "symbol": ["A", "A"],
                          "close": [10, 11]})
    out = validate_bars(frame, source="panel", close_only=True)
    assert out.schema == pl.Schema({"ts": pl.Datetime("us"), "symbol": pl.String(), "close": pl.Float64()})
    with pytest.raises(DataError, match=r"panel: close-only bars .*unexpected \['open'\]"):
        validate_bars(frame.with_columns(open=pl.lit(1.0)), source="panel", close_only=True)
    with pytest.raises(DataError, match=r"missing columns \['open', 'high', 'low', 'volume'\].*close_only=True"):
        validate_bars(frame, source="panel")  # full bars are still required without the declaration
    with pytest.raises(DataError, match=r"column 'close' is not positive in 1 rows"):
        validate_bars(frame.with_columns(close=pl.Series([10.0, 0.0])), source="panel", close_only=True)
    with pytest.raises(DataError, match="duplicate"):
        validate_bars(pl.concat([frame, frame.head(1)]).sort("ts"), source="panel", close_only=True)
