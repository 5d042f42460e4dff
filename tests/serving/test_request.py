"""A served request is checked before any feature is computed: each bad input is refused with the column named."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from dualhrq.serving.request import RequestError, RequestSpec, check_request

SPEC = RequestSpec.for_features(close_only=False, vix=True, market=False, symbols=["SP500", "NASDAQ"], min_bars=5)


def _bars(n: int = 6, symbols=("SP500", "NASDAQ")) -> pl.DataFrame:
    days = [f"2018-06-{d:02d}" for d in range(1, n + 1)]
    rows = [{"ts": d, "symbol": s, "open": 100.0 + i, "high": 101.0 + i, "low": 99.0 + i, "close": 100.5 + i,
             "volume": 1e6, "vix": 15.0} for s in symbols for i, d in enumerate(days)]
    return pl.DataFrame(rows)


def test_a_good_request_is_typed_and_sorted_by_symbol_then_time():
    frame = check_request(_bars().reverse(), SPEC)
    assert frame.columns == ["ts", "symbol", "open", "high", "low", "close", "volume", "vix"]
    assert frame.schema["ts"] == pl.Datetime("us") and frame["close"].dtype == pl.Float64
    assert frame["symbol"].to_list() == ["NASDAQ"] * 6 + ["SP500"] * 6
    assert all(frame.filter(pl.col("symbol") == s)["ts"].is_sorted() for s in ("SP500", "NASDAQ"))


def test_the_columns_a_model_reads_follow_its_features():
    close_only = RequestSpec.for_features(close_only=True, vix=False, market=True, symbols=["A"], min_bars=3)
    assert close_only.columns == ["ts", "symbol", "close", "market"]
    assert SPEC.columns == ["ts", "symbol", "open", "high", "low", "close", "volume", "vix"]


@pytest.mark.parametrize(("field", "broken", "phrase"), [
    ("vix", lambda f: f.drop("vix"), "lacks the columns ['vix']"),
    ("close", lambda f: f.with_columns(close=pl.when(pl.int_range(pl.len()) == 3).then(np.nan)
                                       .otherwise(pl.col("close"))), "1 missing, NaN or infinite"),
    ("open", lambda f: f.with_columns(open=pl.lit(None, pl.Float64)), "12 missing, NaN or infinite"),
    ("low", lambda f: f.with_columns(low=pl.lit(0.0)), "values <= 0"),
    ("volume", lambda f: f.with_columns(volume=pl.lit(-1.0)), "negative"),
    ("high", lambda f: f.with_columns(high=pl.lit("x")), "expected numbers"),
    ("ts", lambda f: f.with_columns(ts=pl.lit("yesterday")), "not timestamps"),
    ("symbol", lambda f: f.with_columns(symbol=pl.lit(1)), "must hold text"),
    ("symbol", lambda f: f.with_columns(symbol=pl.lit("DOW")), "['DOW'] are not ones this model was fitted on"),
    ("ts", lambda f: pl.concat([f, f.head(1)]), "repeats a (symbol, ts) bar"),
    ("ts", lambda f: f.filter(pl.col("ts") != "2018-06-01") .filter(
        (pl.col("symbol") == "NASDAQ") | (pl.col("ts") > "2018-06-02")), "too few bars (SP500: 4)"),
])
def test_each_bad_request_is_refused_naming_its_column(field, broken, phrase):
    with pytest.raises(RequestError) as err:
        check_request(broken(_bars()), SPEC)
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}: ") and phrase in str(err.value)
    assert "Fix:" in str(err.value)


def test_exactly_the_fewest_bars_are_enough():
    assert check_request(_bars(5), SPEC).height == 10  # min_bars = 5: the edge where the verdict flips
    with pytest.raises(RequestError, match="too few bars"):
        check_request(_bars(4), SPEC)
