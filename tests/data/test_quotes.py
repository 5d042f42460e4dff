"""Bars with quotes and trade counts: the optional schema columns and the minute-bar loaders."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from dualhrq.data.schema import BAR_SCHEMA, OPTIONAL_SCHEMA, validate_bars
from dualhrq.data.sources import load_parquet, load_synthetic
from dualhrq.data.synthetic import generate_bars
from dualhrq.errors import DataError


@pytest.fixture(scope="module")
def minute() -> pl.DataFrame:
    return generate_bars(2, n_days=2, seed=9).collect()


def test_optional_columns_are_kept_in_schema_order(minute: pl.DataFrame) -> None:
    out = validate_bars(minute.select(reversed(minute.columns)), source="t")
    assert out.schema == pl.Schema({**BAR_SCHEMA, **OPTIONAL_SCHEMA})
    partial = validate_bars(minute.drop("bid_size", "ask_size", "luld_tier"), source="t")
    assert partial.columns == [*BAR_SCHEMA, "trades", "bid", "ask"]
    cast = validate_bars(minute.with_columns(pl.col("trades").cast(pl.Int32), pl.col("bid").cast(pl.Float32)),
                         source="t")
    assert cast.schema["trades"] == pl.Int64 and cast.schema["bid"] == pl.Float64


def _row(column: str, value: float) -> pl.Expr:
    return pl.when(pl.int_range(pl.len()) == 7).then(value).otherwise(pl.col(column)).alias(column)


BAD = {
    "crossed": (lambda f: f.with_columns(_row("bid", 1e6)), r"column 'bid' is above ask \(crossed quote\)"),
    "zero ask": (lambda f: f.with_columns(_row("ask", 0.0)), r"column 'ask' is not positive"),
    "nan bid": (lambda f: f.with_columns(_row("bid", float("nan"))), r"column 'bid' is null, NaN"),
    "negative size": (lambda f: f.with_columns(_row("ask_size", -100.0)), r"column 'ask_size' is negative"),
    "negative trades": (lambda f: f.with_columns(pl.col("trades") * -1), r"column 'trades' is null or negative"),
    "tier 3": (lambda f: f.with_columns(luld_tier=pl.lit(3, pl.Int8)), r"column 'luld_tier' is not 1 or 2"),
    "bid alone": (lambda f: f.drop("ask"), r"column 'bid' without 'ask'"),
    "float trades": (lambda f: f.with_columns(pl.col("trades").cast(pl.Float64)),
                     r"column 'trades' has type Float64, expected Int64"),
}


@pytest.mark.parametrize("mutate, message", BAD.values(), ids=BAD.keys())
def test_bad_quotes_raise_one_clear_error(minute: pl.DataFrame, mutate, message: str) -> None:
    with pytest.raises(DataError, match=r"^feed: .*" + message + ".*Fix: "):
        validate_bars(mutate(minute), source="feed")


def test_symbol_and_date_partitioned_tree_loads_with_quotes(minute: pl.DataFrame, tmp_path: Path) -> None:
    for (symbol, day), part in minute.group_by("symbol", pl.col("ts").dt.date()):
        folder = tmp_path / f"symbol={symbol}" / f"date={day}"
        folder.mkdir(parents=True)
        part.drop("symbol").write_parquet(folder / "part-0.parquet")
    loaded = load_parquet(tmp_path)
    assert_frame_equal(loaded, validate_bars(minute, source="t"))
    one_day = load_parquet(tmp_path, symbols=["SYN001"], start=minute["ts"][0].date(), end=minute["ts"][0].date())
    assert one_day.height == 390 and set(one_day["symbol"]) == {"SYN001"}


def test_crossed_quotes_in_a_file_name_the_file(minute: pl.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "bars.parquet"
    minute.with_columns(_row("bid", 1e6)).write_parquet(path)
    with pytest.raises(DataError, match=rf"^{path}: column 'bid' is above ask"):
        load_parquet(path)


def test_synthetic_source_is_validated_bars(minute: pl.DataFrame) -> None:
    assert_frame_equal(load_synthetic(n_symbols=2, n_days=2, seed=9), minute)
