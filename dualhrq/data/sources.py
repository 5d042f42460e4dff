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
    steps of about 0.4%. ``symbols`` picks a subset (all 20 by default).
    """
    chosen = list(STOCK_SYMBOLS if symbols is None else symbols)
    unknown = [s for s in chosen if s not in STOCK_SYMBOLS]
    if not chosen or unknown:
        raise DataError(f"data.source.symbols: {unknown or chosen} not in the bundled stock panel; available: "
                        f"{list(STOCK_SYMBOLS)}. Fix: choose from these.")
    prices = _skfolio_data("load_sp500_dataset")
    bars = pl.concat(pl.DataFrame({"ts": prices.index.to_numpy(), "symbol": name, "close": prices[name].to_numpy()})
                     for name in chosen)
    return _between(validate_bars(bars, source="bundled skfolio S&P 500 stocks", close_only=True), start, end)


def load_sp500_index() -> pl.DataFrame:
    """Daily S&P 500 index close (``ts``, ``close``), 1990-01-02..2022-12-28, the stock panel's market."""
    index = _skfolio_data("load_sp500_index")
    return pl.DataFrame({"ts": index.index.to_numpy(), "close": index["SP500"].to_numpy()}).with_columns(
        pl.col("ts").cast(pl.Datetime("us")), pl.col("close").cast(pl.Float64))


@functools.cache
def _skfolio_data(loader: str) -> pd.DataFrame:
    return getattr(importlib.import_module("skfolio.datasets"), loader)()


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
