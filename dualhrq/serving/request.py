"""What a served model accepts: a window of bars per symbol, checked before any feature is computed.

Every refusal is a :class:`RequestError` naming the column (``field``) and the fix, which the served model
turns into an HTTP 400; nothing a bad request holds reaches the network.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl

from dualhrq.data.schema import BAR_SCHEMA, CLOSE_ONLY_SCHEMA
from dualhrq.errors import DataError

VIX = "vix"  # the VIX close of each row's date, for models whose features read it
MARKET = "market"  # the index's close of each row's date, for close-only features with market=true


class RequestError(DataError):
    """A request the model cannot decide on; ``field`` names the column at fault and starts the message."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class RequestSpec:
    """The columns a request carries (bars, then the auxiliary series the features read), the symbols the model
    was fitted on, and the fewest bars per symbol that give one full window of finite features."""

    bars: list[str]
    auxiliary: list[str]
    symbols: list[str]
    min_bars: int
    numeric: list[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "numeric", [c for c in [*self.bars, *self.auxiliary] if c not in ("ts", "symbol")])

    @classmethod
    def for_features(cls, close_only: bool, vix: bool, market: bool, symbols: list[str],
                     min_bars: int) -> RequestSpec:
        bars = list(CLOSE_ONLY_SCHEMA if close_only else BAR_SCHEMA)
        auxiliary = [name for name, wanted in ((VIX, vix), (MARKET, market)) if wanted]
        return cls(bars=bars, auxiliary=auxiliary, symbols=list(symbols), min_bars=int(min_bars))

    @property
    def columns(self) -> list[str]:
        return [*self.bars, *self.auxiliary]

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "numeric"}


def check_request(frame: pl.DataFrame, spec: RequestSpec) -> pl.DataFrame:
    """``frame`` with exactly ``spec.columns``, typed, sorted by (symbol, ts); a :class:`RequestError` naming
    the first column at fault otherwise."""
    missing = [c for c in spec.columns if c not in frame.columns]
    if missing:
        raise RequestError(f"the request lacks the columns {missing}; this model reads {spec.columns}. "
                           "Fix: send every one of them.", field=missing[0])
    frame = frame.select(spec.columns)
    frame = frame.with_columns(_as_datetime(frame["ts"]), _as_string(frame["symbol"]),
                               *(_as_float(frame[c]) for c in spec.numeric))
    for name in spec.numeric:
        bad = frame.filter(~pl.col(name).is_finite() | pl.col(name).is_null()).height
        if bad:
            raise RequestError(f"column {name!r} has {bad} missing, NaN or infinite values. Fix: send finite "
                               "numbers (drop bars that have none).", field=name)
        if name != "volume" and frame.filter(pl.col(name) <= 0).height:
            raise RequestError(f"column {name!r} has values <= 0; prices and index levels are positive. "
                               "Fix: send the bar's traded prices.", field=name)
    if "volume" in frame.columns and frame.filter(pl.col("volume") < 0).height:
        raise RequestError("column 'volume' has negative values. Fix: send the bar's traded volume.", field="volume")
    unknown = sorted(set(frame["symbol"].unique().to_list()) - set(spec.symbols))
    if unknown:
        raise RequestError(f"symbols {unknown} are not ones this model was fitted on ({spec.symbols}). "
                           "Fix: ask for those symbols only.", field="symbol")
    if frame.select(pl.struct("symbol", "ts").is_duplicated().any()).item():
        raise RequestError("the request repeats a (symbol, ts) bar. Fix: send each bar once.", field="ts")
    counts = frame.group_by("symbol").len()
    short = counts.filter(pl.col("len") < spec.min_bars).sort("symbol")
    if short.height:
        have = ", ".join(f"{s}: {n}" for s, n in short.iter_rows())
        raise RequestError(f"too few bars ({have}); one decision needs the last {spec.min_bars} bars of a "
                           "symbol (the features' look-back and the model's window). Fix: send at least that many.",
                           field="ts")
    return frame.sort("symbol", "ts")


def _as_datetime(col: pl.Series) -> pl.Series:
    try:
        if col.dtype == pl.String:
            return col.str.to_datetime(time_unit="us")
        if isinstance(col.dtype, pl.Datetime | pl.Date):
            return col.cast(pl.Datetime("us"))
    except pl.exceptions.PolarsError:
        pass
    raise RequestError(f"column 'ts' has type {col.dtype} or values that are not timestamps. Fix: send ISO "
                       "dates or datetimes (2018-06-29 or 2018-06-29T16:00:00).", field="ts")


def _as_string(col: pl.Series) -> pl.Series:
    if col.dtype != pl.String or col.null_count():
        raise RequestError(f"column 'symbol' must hold text for every row (got {col.dtype}, "
                           f"{col.null_count()} missing). Fix: send the ticker of each bar.", field="symbol")
    return col


def _as_float(col: pl.Series) -> pl.Series:
    if not col.dtype.is_numeric() and col.dtype != pl.Null:
        raise RequestError(f"column {col.name!r} has type {col.dtype}, expected numbers. Fix: send numbers, "
                           "not text.", field=col.name)
    return col.cast(pl.Float64)
