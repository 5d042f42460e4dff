"""Bar sources: the bundled real data from ``arch.data`` and ``skfolio.datasets``, a user's own files,
the synthetic market.

Every loader returns a frame that passed ``validate_bars`` and is sorted by
(symbol, ts). ``start``/``end`` are inclusive ISO dates; ``end`` keeps the
whole day, so intraday bars of the end date are included.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from dualhrq.data.schema import BAR_SCHEMA, validate_bars
from dualhrq.errors import ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd

# arch.data modules by symbol; imported on first use because importing arch takes seconds.
_BUNDLED = {"SP500": "sp500", "NASDAQ": "nasdaq"}
BUNDLED_SYMBOLS: tuple[str, ...] = tuple(_BUNDLED)


def load_bundled(
    symbols: Sequence[str] = BUNDLED_SYMBOLS,
    start: str | date | None = None,
    end: str | date | None = None,
) -> pl.DataFrame:
    """Daily S&P 500 and NASDAQ composite bars, 1999-01-04..2018-12-31.

    Uses ``Close`` rather than ``Adj Close`` so the close stays inside the
    bar's high/low range (for these indices the two are identical anyway).
    """
    if not symbols or any(s not in _BUNDLED for s in symbols):
        raise DataError(
            f"data.source.symbols={list(symbols)} must name one or more bundled symbols; "
            f"available: {list(BUNDLED_SYMBOLS)}. Fix: choose from these."
        )
    bars = pl.concat([_bundled_bars(s) for s in symbols])
    return _between(validate_bars(bars, source="bundled arch.data"), start, end)


@functools.cache
def _bundled_bars(symbol: str) -> pl.DataFrame:
    raw = _arch_data(_BUNDLED[symbol])
    return pl.DataFrame(
        {
            "ts": raw.index.to_numpy(),
            "symbol": symbol,
            **{c.lower(): raw[c].to_numpy() for c in ("Open", "High", "Low", "Close", "Volume")},
        }
    )


def _arch_data(name: str) -> pd.DataFrame:
    return importlib.import_module(f"arch.data.{name}").load()


def load_vix() -> pl.DataFrame:
    """Daily VIX close (``ts``, ``vix``), 2014-01-03..2019-01-03, holidays dropped."""
    raw = _arch_data("vix").dropna()
    vix = pl.DataFrame({"ts": raw.index.to_numpy(), "vix": raw["vix"].to_numpy()})
    return vix.with_columns(pl.col("ts").cast(pl.Datetime("us")), pl.col("vix").cast(pl.Float64))


STOCK_SYMBOLS: tuple[str, ...] = ("AAPL", "AMD", "BAC", "BBY", "CVX", "GE", "HD", "JNJ", "JPM", "KO", "LLY", "MRK",
                                   "MSFT", "PEP", "PFE", "PG", "RRC", "UNH", "WMT", "XOM")


def load_sp500_stocks(
    symbols: Sequence[str] | None = None,
    start: str | date | None = None,
    end: str | date | None = None,
) -> pl.DataFrame:
    """Close-only daily bars of 20 S&P 500 stocks, 1990-01-02..2022-12-28 (``skfolio``'s bundled set).

    The closes are dividend- and split-adjusted and rounded to 3 decimals, so
    the early, low-priced years of some names (AAPL at $0.26 in 1990) move in
    steps of about 0.4%. ``symbols`` picks a subset (all 20 by default). The 20
    are today's survivors, chosen after the fact: a study on them carries
    survivorship bias, which nothing here corrects.
    """
    chosen = _chosen(symbols, STOCK_SYMBOLS, "the bundled stock panel")
    source = "bundled skfolio S&P 500 stocks"
    return _within_years(_close_panel(_skfolio_data("load_sp500_dataset"), chosen, source), start, end, source)


FACTOR_ETFS: tuple[str, ...] = ("MTUM", "QUAL", "SIZE", "USMV", "VLUE")
MARKET_FACTOR = "SP500"


def load_factor_etfs(
    symbols: Sequence[str] | None = None,
    start: str | date | None = None,
    end: str | date | None = None,
    market: bool = True,
) -> pl.DataFrame:
    """Close-only daily bars of five iShares MSCI USA factor ETFs, 2014-01-02..2022-12-28 (``skfolio``'s
    ``load_factors_dataset``): momentum (MTUM), quality (QUAL), size (SIZE), minimum volatility (USMV) and
    value (VLUE); with ``market``, the S&P 500 index as the market factor (symbol ``SP500``) over its
    whole span, 1990-01-02..2022-12-28, so its history starts 24 years before the styles'.

    Factor returns for a risk model of the stock panel; adjusted closes, the same calendar as the stocks.
    """
    chosen = _chosen(symbols, FACTOR_ETFS, "the bundled factor ETFs")
    source = "bundled skfolio factor ETFs" + (" and market factor" if market else "")
    bars = _close_panel(_skfolio_data("load_factors_dataset"), chosen, source)
    if market:
        index = load_sp500_index().select("ts", symbol=pl.lit(MARKET_FACTOR), close="close")
        bars = validate_bars(pl.concat([bars, index]), source=source, close_only=True)
    return _within_years(bars, start, end, source)


def load_sp500_index() -> pl.DataFrame:
    """Daily S&P 500 index close (``ts``, ``close``), 1990-01-02..2022-12-28, the stock panel's market."""
    index = _skfolio_data("load_sp500_index")
    return pl.DataFrame({"ts": index.index.to_numpy(), "close": index["SP500"].to_numpy()}).with_columns(
        pl.col("ts").cast(pl.Datetime("us")), pl.col("close").cast(pl.Float64))


def load_history_closes() -> pl.DataFrame:
    """Every bundled daily close (``ts, symbol, close``) under one roof, the history stress scenarios replay:
    the S&P 500 index (``SP500``, 1990-2022), the NASDAQ composite (``NASDAQ``, 1999-2018) and the 20 stocks
    (1990-2022)."""
    index = load_sp500_index().select("ts", symbol=pl.lit("SP500"), close="close")
    nasdaq = load_bundled(["NASDAQ"]).select("ts", "symbol", "close")
    stocks = load_sp500_stocks().select("ts", "symbol", "close")
    return pl.concat([index, nasdaq.with_columns(pl.col("ts").cast(pl.Datetime("us"))), stocks]).sort("symbol", "ts")


@functools.cache
def _skfolio_data(loader: str) -> pd.DataFrame:
    return getattr(importlib.import_module("skfolio.datasets"), loader)()


def _chosen(symbols: Sequence[str] | None, available: tuple[str, ...], what: str) -> list[str]:
    """``symbols`` (all of ``available`` when None), refused with the valid names when one is not there."""
    chosen = list(available if symbols is None else symbols)
    unknown = [s for s in chosen if s not in available]
    if not chosen or unknown:
        raise DataError(f"data.source.symbols: {unknown or chosen} not in {what}; available: {list(available)}. "
                        "Fix: choose from these.")
    return chosen


def _close_panel(prices: pd.DataFrame, chosen: list[str], source: str) -> pl.DataFrame:
    """Close-only bars of the ``chosen`` columns of a wide price frame. A column's missing days before its
    first close (a late listing) are dropped, not filled; a missing day after it is refused by the schema
    check."""
    ts = prices.index.to_numpy()
    bars = pl.concat(pl.DataFrame({"ts": ts, "symbol": name, "close": prices[name].to_numpy()}) for name in chosen)
    bars = bars.filter(pl.col("close").is_not_nan().cum_sum().over("symbol") > 0)
    return validate_bars(bars, source=source, close_only=True)


def _within_years(bars: pl.DataFrame, start: str | date | None, end: str | date | None,
                  source: str) -> pl.DataFrame:
    """``bars`` from ``start`` through ``end``, which must lie in the calendar years the bars cover."""
    first, last = bars["ts"].min(), bars["ts"].max()
    for field, value in (("start", start), ("end", end)):
        day = _day(value, field)
        if day is not None and not first.year <= day.year <= last.year:
            raise ConfigError(f"{field}={day.date()} lies outside the {source}, {first.date()}..{last.date()}. "
                              f"Fix: choose a date in {first.year}..{last.year}.", field=field)
    return _between(bars, start, end)


def load_synthetic(n_symbols: int = 6, start: str | date = "2024-01-02", n_days: int = 30,
                   seed: int = 0) -> pl.DataFrame:
    """SYNTHETIC 1-minute bars with quotes from :mod:`dualhrq.data.synthetic`, validated like any source."""
    from dualhrq.data.synthetic import generate_bars

    bars = generate_bars(n_symbols=n_symbols, start=start, n_days=n_days, seed=seed)
    return validate_bars(bars, source="synthetic market")


def load_parquet(
    path: str | Path,
    symbols: Sequence[str] | None = None,
    start: str | date | None = None,
    end: str | date | None = None,
) -> pl.DataFrame:
    """Bars from a parquet or CSV file, or a directory tree of parquet files.

    In a hive-partitioned tree (``symbol=XYZ/date=.../part.parquet``) the
    ``symbol`` partition supplies the symbol column; other partition keys
    only restate ``ts`` and are dropped.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(
            f"data.path: {path} does not exist. Fix: set data.path to a bar file or directory."
        )
    try:
        raw = _scan(path).collect()
    except (pl.exceptions.PolarsError, OSError) as err:
        if path.is_dir():
            _check_same_schema(path)
        raise DataError(
            f"data.path: cannot read {path}: {err}. Fix: check the file format."
        ) from None
    bars = validate_bars(raw, source=str(path))
    if symbols is not None:
        present = bars["symbol"].unique().sort().to_list()
        unknown = [s for s in symbols if s not in present]
        if unknown:
            raise DataError(
                f"data.source.symbols: {unknown} not in {path}; present: {present}. "
                "Fix: choose from these."
            )
        bars = bars.filter(pl.col("symbol").is_in(list(symbols)))
    return _between(bars, start, end)


def _check_same_schema(path: Path) -> None:
    """Name the first column on which the parquet files under ``path`` disagree, and two files that do."""
    seen: dict[str, tuple[pl.DataType, Path]] = {}
    for file in sorted(path.rglob("*.parquet")):
        for name, dtype in pl.read_parquet_schema(file).items():
            first = seen.setdefault(name, (dtype, file))
            if first[0] != dtype:
                raise DataError(
                    f"data.path: the parquet files under {path} disagree on column '{name}': {first[0]} in "
                    f"{first[1].relative_to(path)}, {dtype} in {file.relative_to(path)}. "
                    "Fix: write every file with the same column types."
                )


def _scan(path: Path) -> pl.LazyFrame:
    """A lazy scan of one file or a parquet tree, without non-bar partition keys."""
    if path.is_file():
        if path.suffix == ".parquet":
            return pl.scan_parquet(path)
        if path.suffix == ".csv":
            return pl.scan_csv(path, try_parse_dates=True)
        raise DataError(
            f"data.path: {path} is neither .parquet nor .csv. "
            "Fix: convert the file or point data.path at one of these."
        )
    files = list(path.rglob("*.parquet"))
    if not files:
        raise DataError(
            f"data.path: no parquet files under {path}. Fix: point data.path at a bar tree."
        )
    folders = {part for f in files for part in f.relative_to(path).parts[:-1]}
    keys = {folder.split("=")[0] for folder in folders if "=" in folder}
    scan = pl.scan_parquet(
        path / "**" / "*.parquet",
        hive_partitioning=bool(keys),
        hive_schema=dict.fromkeys(keys, pl.String()) or None,
    )
    return scan.drop(sorted(keys - BAR_SCHEMA.keys()))


def _between(bars: pl.DataFrame, start: str | date | None, end: str | date | None) -> pl.DataFrame:
    """Keep bars from ``start`` through the whole day of ``end``."""
    lo, hi = _day(start, "start"), _day(end, "end")
    if lo and hi and lo > hi:
        raise ConfigError(f"start ({lo.date()}) is after end ({hi.date()}). Fix: swap them.", field="start")
    if lo:
        bars = bars.filter(pl.col("ts") >= lo)
    if hi:
        bars = bars.filter(pl.col("ts") < hi + timedelta(days=1))
    if bars.height == 0:
        raise DataError(
            f"data.source.start={start} / data.source.end={end} select no bars. "
            "Fix: widen the range to overlap the data."
        )
    return bars


def _day(value: str | date | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        day = value if isinstance(value, date) else date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{field}={value!r} is not an ISO date. Fix: write it as YYYY-MM-DD.", field=field) from None
    return datetime(day.year, day.month, day.day)
