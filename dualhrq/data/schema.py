"""The bar schema: the one table format every source must deliver.

=========  ==================  ============================================
column     dtype               meaning
=========  ==================  ============================================
ts         Datetime("us")      bar time, naive exchange-local; daily bars
                               are stamped at midnight of their trading day
symbol     String              instrument name
open       Float64             first price of the bar, > 0
high       Float64             highest price, > 0 and >= low
low        Float64             lowest price, > 0
close      Float64             last price, > 0
volume     Float64             traded quantity, >= 0
=========  ==================  ============================================

Intraday sources may add any of these optional columns (kept when present):

=========  ==================  ============================================
trades     Int64               number of trades in the bar, >= 0
bid, ask   Float64             quotes at the bar's close, > 0, bid <= ask
                               (always together)
bid_size,  Float64             displayed size at the bid and the ask, >= 0
ask_size                       (always together)
luld_tier  Int8                LULD tier of the symbol, 1 or 2
=========  ==================  ============================================

Close-only sources (adjusted closes, as most free equity panels are) declare
``close_only=True`` and deliver exactly ``ts``, ``symbol`` and ``close``:
open, high, low and volume are never made up from the close, and the
features that need them are left out (``features.engine.CloseFeatureSpec``).

Rows are unique per (symbol, ts). ``validate_bars`` is the single gate: it
casts lossless types, rejects anything that would silently corrupt features
or labels with one ``DataError`` naming the column and the fix, and returns
the frame sorted by (symbol, ts), the order the feature engine relies on.
"""

from __future__ import annotations

import polars as pl

from dualhrq.errors import DataError

BAR_SCHEMA: dict[str, pl.DataType] = {
    "ts": pl.Datetime("us"),
    "symbol": pl.String(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
}
OPTIONAL_SCHEMA: dict[str, pl.DataType] = {
    "trades": pl.Int64(),
    "bid": pl.Float64(),
    "ask": pl.Float64(),
    "bid_size": pl.Float64(),
    "ask_size": pl.Float64(),
    "luld_tier": pl.Int8(),
}
CLOSE_ONLY_SCHEMA: dict[str, pl.DataType] = {name: BAR_SCHEMA[name] for name in ("ts", "symbol", "close")}
# every column, required then optional: intraday bars with quotes, as the synthetic market delivers them
INTRADAY_BAR_SCHEMA: dict[str, pl.DataType] = {**BAR_SCHEMA, **OPTIONAL_SCHEMA}
_PAIRS = (("bid", "ask"), ("bid_size", "ask_size"))
PRICE_COLUMNS = ("open", "high", "low", "close")
VALUE_COLUMNS = (*PRICE_COLUMNS, "volume")


def validate_bars(frame: pl.DataFrame | pl.LazyFrame, *, source: str, close_only: bool = False) -> pl.DataFrame:
    """Check ``frame`` against ``BAR_SCHEMA`` (``CLOSE_ONLY_SCHEMA`` if ``close_only``) and return it
    sorted by (symbol, ts).

    The input must already be time-ordered within each symbol: a disordered
    feed usually means a bad merge upstream, so it is reported, not hidden by
    sorting. ``source`` (a path or data set name) starts every error message.
    """
    df = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    if close_only:
        _check_close_only_columns(df, source)
        names = list(CLOSE_ONLY_SCHEMA)
    else:
        _check_columns(df, source)
        names = [*BAR_SCHEMA, *(c for c in OPTIONAL_SCHEMA if c in df.columns)]
    df = df.select(_cast(name, df, source) for name in names)
    if df.height == 0:
        raise DataError(f"{source}: no rows. Fix: point the source at a file with bars.")
    _check_values(df, source)
    _check_order(df, source)
    return df.sort("symbol", "ts")


def _check_columns(df: pl.DataFrame, source: str) -> None:
    required = list(BAR_SCHEMA)
    missing = [c for c in required if c not in df.columns]
    if missing:
        closes_only = set(missing) == {"open", "high", "low", "volume"}
        raise DataError(
            f"{source}: missing columns {missing}; bars need exactly {required}. "
            + ("Fix: closes alone are read with close_only=True (features: CloseFeatureSpec)."
               if closes_only else "Fix: rename your columns to these names.")
        )
    extra = [c for c in df.columns if c not in BAR_SCHEMA and c not in OPTIONAL_SCHEMA]
    if extra:
        raise DataError(
            f"{source}: unexpected columns {extra}; bars have exactly {required}, optionally with "
            f"{list(OPTIONAL_SCHEMA)}. Fix: drop or rename the extra columns."
        )
    for pair in _PAIRS:
        present = [c for c in pair if c in df.columns]
        if len(present) == 1:
            (lone,) = set(pair) - set(present)
            raise DataError(f"{source}: column '{present[0]}' without '{lone}'. Fix: supply both or neither.")


def _check_close_only_columns(df: pl.DataFrame, source: str) -> None:
    required = list(CLOSE_ONLY_SCHEMA)
    missing = [c for c in required if c not in df.columns]
    extra = [c for c in df.columns if c not in CLOSE_ONLY_SCHEMA]
    if missing or extra:
        raise DataError(
            f"{source}: close-only bars have exactly {required}; missing {missing}, unexpected {extra}. "
            "Fix: select these columns, or load full bars without close_only if the source has open, high, "
            "low and volume."
        )


def _cast(name: str, df: pl.DataFrame, source: str) -> pl.Expr:
    """Cast one column of ``df`` to its schema type when that loses nothing."""
    col, dtype = pl.col(name), df.schema[name]
    if name == "ts":
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is None:
            return col.cast(pl.Datetime("us"))
        if dtype == pl.Date:
            return col.cast(pl.Datetime("us"))
        fix = (
            "convert to naive exchange-local time, e.g. "
            ".dt.convert_time_zone(tz).dt.replace_time_zone(None)"
            if isinstance(dtype, pl.Datetime)
            else "parse it, e.g. pl.col('ts').str.to_datetime()"
        )
    elif name == "symbol":
        if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
            return col.cast(pl.String)
        fix = "store symbols as strings"
    elif name in ("trades", "luld_tier"):
        if dtype.is_integer():
            return col.cast(OPTIONAL_SCHEMA[name])
        fix = "store it as an integer"
    else:
        if dtype.is_numeric():
            return col.cast(pl.Float64)
        fix = "store it as a number" + _first_non_number(df, name)
    expected = BAR_SCHEMA.get(name) or OPTIONAL_SCHEMA[name]
    raise DataError(f"{source}: column '{name}' has type {dtype}, expected {expected}. Fix: {fix}.")


def _first_non_number(df: pl.DataFrame, name: str) -> str:
    """Where a text column first holds something that is not a number (a CSV typo), as a message tail."""
    if df.schema[name] != pl.String:
        return ""
    bad = df.with_row_index("row", offset=1).filter(
        pl.col(name).is_not_null() & pl.col(name).str.strip_chars().cast(pl.Float64, strict=False).is_null())
    if bad.height == 0:
        return ""
    row = bad.row(0, named=True)
    return (f"; the first value that is not one is {row[name]!r} in row {row['row']} (symbol={row['symbol']!r}, "
            f"ts={row['ts']}; line {row['row'] + 1} of a CSV file with a header)")


def _first_row(df: pl.DataFrame, mask: pl.Expr) -> str:
    row = df.filter(mask).row(0, named=True)
    return f"symbol={row['symbol']!r}, ts={row['ts']}"


def _check_values(df: pl.DataFrame, source: str) -> None:
    for name in ("ts", "symbol"):
        if df[name].null_count():
            raise DataError(f"{source}: column '{name}' has nulls. Fix: drop rows without {name}.")
    values = [c for c in VALUE_COLUMNS if c in df.columns]
    rules = [
        (name, ~pl.col(name).is_finite().fill_null(False), "is null, NaN or infinite",
         "drop or fill these rows")
        for name in values
    ]
    rules += [
        (name, pl.col(name) <= 0, "is not positive", "drop these rows or fix the price feed")
        for name in values if name in PRICE_COLUMNS
    ]
    if "volume" in df.columns:
        rules += [
            ("volume", pl.col("volume") < 0, "is negative", "volume must be >= 0"),
            ("high", pl.col("high") < pl.col("low"), "is below low", "swap or drop these bars"),
        ]
    rules += _quote_rules(df)
    for name, bad, what, fix in rules:
        count = df.select(bad.sum()).item()
        if count:
            raise DataError(
                f"{source}: column '{name}' {what} in {count} rows "
                f"(first at {_first_row(df, bad)}). Fix: {fix}."
            )


def _quote_rules(df: pl.DataFrame) -> list[tuple[str, pl.Expr, str, str]]:
    """Value rules of the optional columns present in ``df``."""
    rules = []
    for name in ("bid", "ask", "bid_size", "ask_size"):
        if name in df.columns:
            rules.append((name, ~pl.col(name).is_finite().fill_null(False), "is null, NaN or infinite",
                          "drop or fill these rows"))
    if "bid" in df.columns:
        rules += [(name, pl.col(name) <= 0, "is not positive", "drop these quotes") for name in ("bid", "ask")]
        rules.append(("bid", pl.col("bid") > pl.col("ask"), "is above ask (crossed quote)",
                      "drop crossed quotes or swap the columns if they are mislabelled"))
    if "bid_size" in df.columns:
        rules += [(name, pl.col(name) < 0, "is negative", "sizes must be >= 0") for name in ("bid_size", "ask_size")]
    if "trades" in df.columns:
        rules.append(("trades", pl.col("trades").is_null() | (pl.col("trades") < 0), "is null or negative",
                      "trade counts must be >= 0"))
    if "luld_tier" in df.columns:
        rules.append(("luld_tier", ~pl.col("luld_tier").is_in([1, 2]).fill_null(False), "is not 1 or 2",
                      "set the LULD tier of each symbol to 1 or 2"))
    return rules


def _check_order(df: pl.DataFrame, source: str) -> None:
    ts, previous = pl.col("ts"), pl.col("ts").shift(1)
    backwards = (ts < previous).over("symbol")
    if df.select(backwards.any()).item():
        raise DataError(
            f"{source}: timestamps go backwards within a symbol (first at "
            f"{_first_row(df, backwards)}). Fix: sort by symbol, ts before loading."
        )
    repeated = (ts == previous).over("symbol")
    if df.select(repeated.any()).item():
        raise DataError(
            f"{source}: duplicate (symbol, ts) row at {_first_row(df, repeated)}. "
            "Fix: keep one bar per symbol and timestamp."
        )
