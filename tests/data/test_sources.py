"""Loaders: the bundled arch data and a user's parquet/CSV files."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from arch.data import sp500

from dualhrq.data.schema import BAR_SCHEMA
from dualhrq.data.sources import BUNDLED_SYMBOLS, load_bundled, load_parquet, load_vix
from dualhrq.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def bundled() -> pl.DataFrame:
    return load_bundled()


def test_bundled_covers_both_indices_1999_to_2018(bundled: pl.DataFrame) -> None:
    assert BUNDLED_SYMBOLS == ("SP500", "NASDAQ")
    assert bundled.schema == pl.Schema(BAR_SCHEMA)
    counts = dict(bundled.group_by("symbol").len().iter_rows())
    assert counts == {"SP500": 5031, "NASDAQ": 5031}
    assert bundled["ts"].min() == datetime(1999, 1, 4)
    assert bundled["ts"].max() == datetime(2018, 12, 31)


def test_bundled_prices_match_arch_close_not_adjusted(bundled: pl.DataFrame) -> None:
    raw = sp500.load()
    ours = bundled.filter(pl.col("symbol") == "SP500")
    np.testing.assert_array_equal(ours["close"].to_numpy(), raw["Close"].to_numpy())
    np.testing.assert_array_equal(ours["volume"].to_numpy(), raw["Volume"].to_numpy().astype(float))


def test_start_and_end_are_inclusive() -> None:
    week = load_bundled(["SP500"], start="2010-01-04", end="2010-01-08")
    assert week["ts"].to_list() == [datetime(2010, 1, d) for d in range(4, 9)]


@pytest.mark.parametrize("symbols", [["SP500", "DAX"], []])
def test_unknown_bundled_symbol_lists_the_available_ones(symbols: list[str]) -> None:
    with pytest.raises(DataError, match=r"data.source.symbols=.* must name one or more bundled symbols; "
                       r"available: \['SP500', 'NASDAQ'\]"):
        load_bundled(symbols)


def test_range_without_data_names_start_and_end() -> None:
    with pytest.raises(DataError, match=r"data.source.start=2030-01-01 / data.source.end=None select no bars"):
        load_bundled(start="2030-01-01")


@pytest.mark.parametrize(
    "start, end, message",
    [
        ("01/02/2010", None, r"^start='01/02/2010' is not an ISO date. Fix: .* YYYY-MM-DD"),
        ("2011-01-01", "2010-01-01", r"^start \(2011-01-01\) is after end \(2010-01-01\)"),
    ],
)
def test_bad_dates_are_config_errors(start: str, end: str | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        load_bundled(start=start, end=end)
    assert err.value.field == "start"  # data.source.start once the reader of data.source locates it


def test_vix_daily_closes_2014_to_2019_without_holiday_gaps() -> None:
    vix = load_vix()
    assert vix.schema == pl.Schema({"ts": pl.Datetime("us"), "vix": pl.Float64})
    assert vix["ts"].min() == datetime(2014, 1, 3)
    assert vix["ts"].max() == datetime(2019, 1, 3)
    assert vix["vix"].is_nan().sum() == 0
    assert vix["vix"].min() > 0


@pytest.fixture
def bars() -> pl.DataFrame:
    return load_bundled(start="2017-11-01", end="2018-02-28")


def test_parquet_and_csv_files_round_trip(bars: pl.DataFrame, tmp_path: Path) -> None:
    bars.write_parquet(tmp_path / "bars.parquet")
    bars.write_csv(tmp_path / "bars.csv")
    assert load_parquet(tmp_path / "bars.parquet").equals(bars)
    assert load_parquet(str(tmp_path / "bars.csv")).equals(bars)


def test_hive_tree_symbol_partition_supplies_symbol(bars: pl.DataFrame, tmp_path: Path) -> None:
    for (symbol, month), part in bars.group_by("symbol", pl.col("ts").dt.strftime("%Y-%m")):
        folder = tmp_path / f"symbol={symbol}" / f"date={month}-01"
        folder.mkdir(parents=True)
        part.drop("symbol").write_parquet(folder / "part.parquet")
    assert load_parquet(tmp_path).equals(bars)
    january = load_parquet(tmp_path, symbols=["NASDAQ"], start="2018-01-01", end="2018-01-31")
    assert january["symbol"].unique().to_list() == ["NASDAQ"]
    assert january["ts"].dt.month().unique().to_list() == [1]
    assert january.height == 21  # 23 weekdays less New Year and MLK day


def test_end_date_keeps_intraday_bars_of_that_day(tmp_path: Path) -> None:
    intraday = pl.DataFrame(
        {
            "ts": [datetime(2020, 3, 2, h) for h in (10, 15)] + [datetime(2020, 3, 3, 10)],
            "symbol": "X",
            **dict.fromkeys(["open", "high", "low", "close", "volume"], 1.0),
        }
    )
    intraday.write_parquet(tmp_path / "x.parquet")
    assert load_parquet(tmp_path / "x.parquet", end="2020-03-02").height == 2


def test_missing_path_names_data_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data.path: .*nope.parquet does not exist"):
        load_parquet(tmp_path / "nope.parquet")


def test_unknown_symbol_lists_symbols_present(bars: pl.DataFrame, tmp_path: Path) -> None:
    bars.write_parquet(tmp_path / "bars.parquet")
    message = r"data.source.symbols: \['AAPL'\] not in .*; present: \['NASDAQ', 'SP500'\]"
    with pytest.raises(DataError, match=message):
        load_parquet(tmp_path / "bars.parquet", symbols=["AAPL"])


def test_invalid_files_name_data_path(tmp_path: Path) -> None:
    (tmp_path / "bars.json").write_text("{}")
    with pytest.raises(DataError, match=r"data.path: .*bars.json is neither .parquet nor .csv"):
        load_parquet(tmp_path / "bars.json")
    (tmp_path / "broken.parquet").write_text("not parquet")
    with pytest.raises(DataError, match=r"data.path: cannot read .*broken.parquet"):
        load_parquet(tmp_path / "broken.parquet")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"data.path: no parquet files under .*empty"):
        load_parquet(tmp_path / "empty")


def test_schema_errors_name_the_file(bars: pl.DataFrame, tmp_path: Path) -> None:
    bars.rename({"close": "Close"}).write_parquet(tmp_path / "bars.parquet")
    with pytest.raises(DataError, match=r"bars.parquet: missing columns \['close'\]"):
        load_parquet(tmp_path / "bars.parquet")


def test_stock_panel_is_skfolios_closes_in_the_close_only_schema() -> None:
    from skfolio.datasets import load_sp500_dataset, load_sp500_index

    from dualhrq.data.schema import CLOSE_ONLY_SCHEMA
    from dualhrq.data.sources import STOCK_SYMBOLS, load_sp500_stocks
    from dualhrq.data.sources import load_sp500_index as index_source

    bars = load_sp500_stocks()
    raw = load_sp500_dataset()
    assert bars.schema == pl.Schema(CLOSE_ONLY_SCHEMA)
    assert sorted(STOCK_SYMBOLS) == sorted(raw.columns) and len(STOCK_SYMBOLS) == 20
    assert bars.height == raw.size == 20 * 8313
    assert bars["ts"].min() == datetime(1990, 1, 2) and bars["ts"].max() == datetime(2022, 12, 28)
    msft = bars.filter(pl.col("symbol") == "MSFT")
    np.testing.assert_array_equal(msft["close"].to_numpy(), raw["MSFT"].to_numpy())
    index = index_source()
    np.testing.assert_array_equal(index["close"].to_numpy(), load_sp500_index()["SP500"].to_numpy())

    two = load_sp500_stocks(["KO", "PEP"], start="2008-09-01", end="2008-09-30")
    assert two["symbol"].unique().sort().to_list() == ["KO", "PEP"]
    assert two["ts"].min() >= datetime(2008, 9, 1) and two["ts"].max() <= datetime(2008, 9, 30)
    with pytest.raises(DataError, match=r"data.source.symbols: \['TSLA'\].*Fix: choose"):
        load_sp500_stocks(["KO", "TSLA"])


def test_a_tree_of_files_with_different_column_types_names_the_column_and_two_files(
        bars: pl.DataFrame, tmp_path: Path) -> None:
    bars.filter(pl.col("symbol") == "SP500").write_parquet(tmp_path / "a.parquet")
    bars.filter(pl.col("symbol") == "NASDAQ").with_columns(pl.col("volume").cast(pl.Int64)).write_parquet(
        tmp_path / "b.parquet")
    message = (r"^data.path: the parquet files under .* disagree on column 'volume': Float64 in a.parquet, "
               r"Int64 in b.parquet. Fix: write every file with the same column types.$")
    with pytest.raises(DataError, match=message):
        load_parquet(tmp_path)


def test_a_csv_value_that_is_not_a_number_is_named_with_its_row(bars: pl.DataFrame, tmp_path: Path) -> None:
    text = bars.with_columns(pl.col("close").cast(pl.String)).with_columns(
        pl.when(pl.int_range(pl.len()) == 4).then(pl.lit("12,5")).otherwise(pl.col("close")).alias("close"))
    text.write_csv(tmp_path / "bars.csv")
    lines = (tmp_path / "bars.csv").read_text().splitlines()
    assert '"12,5"' in lines[5]  # the fifth bar is the CSV's sixth line, after the header
    row = bars.row(4, named=True)
    message = (rf"column 'close' has type String, expected Float64. Fix: store it as a number; the first value "
               rf"that is not one is '12,5' in row 5 \(symbol='{row['symbol']}', ts={row['ts']}; line 6 of a CSV")
    with pytest.raises(DataError, match=message):
        load_parquet(tmp_path / "bars.csv")


def test_a_stock_outside_the_panel_is_refused_with_the_twenty_valid_names() -> None:
    from dualhrq.data.sources import load_sp500_stocks

    listed = r"\['AAPL', 'AMD', 'BAC', 'BBY', 'CVX', 'GE', 'HD', 'JNJ', 'JPM', 'KO', 'LLY', 'MRK', 'MSFT', " \
             r"'PEP', 'PFE', 'PG', 'RRC', 'UNH', 'WMT', 'XOM'\]"
    with pytest.raises(DataError, match=rf"^data.source.symbols: \['NVDA'\] not in the bundled stock panel; "
                                        rf"available: {listed}\. Fix: choose from these\.$"):
        load_sp500_stocks(["AAPL", "NVDA"])


@pytest.mark.parametrize("start, end, field, day", [
    ("1989-12-29", None, "start", "1989-12-29"),  # the last trading day before the panel's first
    (None, "2023-01-03", "end", "2023-01-03"),
    ("1985-01-01", "1986-01-01", "start", "1985-01-01"),
])
def test_a_date_range_outside_1990_2022_is_refused(start: str | None, end: str | None, field: str, day: str) -> None:
    from dualhrq.data.sources import load_sp500_stocks

    message = (rf"^{field}={day} lies outside the bundled skfolio S&P 500 stocks, 1990-01-02\.\.2022-12-28\. "
               r"Fix: choose a date in 1990\.\.2022\.$")
    with pytest.raises(ConfigError, match=message) as err:
        load_sp500_stocks(["KO"], start=start, end=end)
    assert err.value.field == field
    # the years' edges themselves are accepted: holidays before the first and after the last trading day
    edge = load_sp500_stocks(["KO"], start="1990-01-01", end="2022-12-31")
    assert edge.height == 8313


def test_factor_etfs_are_skfolios_closes_with_the_index_as_market_factor_over_its_whole_span() -> None:
    from skfolio.datasets import load_factors_dataset, load_sp500_index

    from dualhrq.data.schema import CLOSE_ONLY_SCHEMA
    from dualhrq.data.sources import FACTOR_ETFS, MARKET_FACTOR, load_factor_etfs

    raw, index = load_factors_dataset(), load_sp500_index()
    bars = load_factor_etfs()
    assert bars.schema == pl.Schema(CLOSE_ONLY_SCHEMA)
    assert sorted(FACTOR_ETFS) == sorted(raw.columns) == ["MTUM", "QUAL", "SIZE", "USMV", "VLUE"]
    spans = {s: (f["ts"].min(), f["ts"].max(), f.height) for (s,), f in bars.group_by("symbol")}
    assert spans[MARKET_FACTOR] == (datetime(1990, 1, 2), datetime(2022, 12, 28), 8313)
    for name in FACTOR_ETFS:
        kept = raw[name].dropna()
        assert spans[name] == (kept.index[0].to_pydatetime(), datetime(2022, 12, 28), kept.size)
        assert kept.index[0].year == 2014
        got = bars.filter(pl.col("symbol") == name)
        np.testing.assert_array_equal(got["close"].to_numpy(), kept.to_numpy())
        np.testing.assert_array_equal(got["ts"].to_numpy(), kept.index.to_numpy())
    # no NaN introduced: every row a close the data set has, the market's those of the index
    assert bars["close"].is_nan().sum() == 0 and bars["close"].null_count() == 0
    assert bars.height == int(raw.notna().sum().sum()) + index.shape[0]
    np.testing.assert_array_equal(bars.filter(pl.col("symbol") == MARKET_FACTOR)["close"].to_numpy(),
                                  index["SP500"].to_numpy())
    styles = load_factor_etfs(["USMV", "VLUE"], start="2015-01-01", end="2015-12-31", market=False)
    assert styles["symbol"].unique().sort().to_list() == ["USMV", "VLUE"]
    assert styles["ts"].dt.year().unique().to_list() == [2015]
    with pytest.raises(DataError, match=r"data.source.symbols: \['SPY'\] not in the bundled factor ETFs; "
                                        r"available: \['MTUM', 'QUAL', 'SIZE', 'USMV', 'VLUE'\]"):
        load_factor_etfs(["SPY"])
    with pytest.raises(ConfigError, match=r"^start=2013-06-03 lies outside the bundled skfolio factor ETFs, "
                                          r"2014-01-02\.\.2022-12-28"):
        load_factor_etfs(start="2013-06-03", market=False)
    assert load_factor_etfs(["MTUM"], start="2013-06-03", end="2013-12-31")["symbol"].unique().to_list() == [
        MARKET_FACTOR]  # before the styles, only the market factor has closes
