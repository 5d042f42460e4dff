"""Turn a feature frame into model samples: a window of bars and a forward label.

A sample is a decision bar t of one symbol. Its input is the ``seq_len``
feature rows ending at t (all of that symbol, none with a null or
non-finite feature); its label is the log return over (t, t1], with t1 the
bar ``horizon`` bars later. Its information starts at t0, the bar that the
oldest row of its window reaches back to through the features' lookback.
Samples are ordered by (t, symbol), time-major, so a block of contiguous time
(a CPCV group) is a contiguous index range, and ``t0``/``t``/``t1`` are what
purging and embargo need.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from dualhrq.config import positive_int
from dualhrq.errors import DataError


@dataclass
class SampleSet:
    """Feature rows stored once; samples index them by the end row of their window."""

    features: np.ndarray  # float32 [n_rows, F], rows ordered (symbol, ts)
    regime: np.ndarray  # float32 [n_rows, R]
    end_row: np.ndarray  # int64 [S], row of decision bar t
    symbol_id: np.ndarray  # int64 [S], index into symbols
    t: np.ndarray  # datetime64[us] [S], decision time
    t1: np.ndarray  # datetime64[us] [S], label end time (bar t + horizon)
    t0: np.ndarray  # datetime64[us] [S], oldest bar the inputs depend on (window start - lookback)
    target: np.ndarray  # float64 [S], log(close[t1] / close[t])
    next_return: np.ndarray  # float64 [S], close[t+1] / close[t] - 1
    symbols: list[str]
    row_symbol: np.ndarray  # int64 [n_rows], symbol id of every feature row
    row_ts: np.ndarray  # datetime64[us] [n_rows], time of every feature row
    feature_names: list[str]
    regime_names: list[str]
    seq_len: int
    horizon: int
    lookback: int = 0  # bars before a feature row that its value depends on

    def __len__(self) -> int:
        return len(self.end_row)

    def row_start(self, rows: np.ndarray, bars: int) -> np.ndarray:
        """Time of the bar ``bars`` bars before each of ``rows`` in its symbol (its first bar at the latest)."""
        first = np.searchsorted(self.row_symbol, self.row_symbol[rows], side="left")
        return self.row_ts[np.maximum(rows - bars, first)]

    def window(self, i: int) -> np.ndarray:
        """Feature rows of sample ``i``: [seq_len, F], oldest first."""
        end = self.end_row[i] + 1
        return self.features[end - self.seq_len : end]


def build_samples(
    frame: pl.DataFrame,
    feature_cols: Sequence[str],
    regime_cols: Sequence[str],
    *,
    seq_len: int,
    horizon: int = 1,
    stride: int = 1,
    lookback: int = 0,
    labelled: bool = True,
) -> SampleSet:
    """Samples from a ``compute_features`` frame (``ts, symbol, close`` + features).

    ``stride`` keeps the decision bars at every stride-th decision time of the
    panel (the times at which any symbol has an eligible bar, from the first),
    so all symbols decide at the same times; a symbol that starts late or
    resumes after a gap joins on that grid. ``lookback`` is how many bars before a row
    its features read (``features.engine.input_lookback``); it sets ``t0``.
    ``labelled=False`` keeps decision bars whose
    label lies beyond the data too (the latest bars, to decide on): their
    ``t1`` is NaT and ``target`` / ``next_return`` are NaN.
    """
    for field, value in (("seq_len", seq_len), ("horizon", horizon), ("stride", stride)):
        positive_int(value, field)
    if isinstance(lookback, bool) or not isinstance(lookback, int) or lookback < 0:
        raise DataError(f"lookback must be a whole number of bars >= 0, got {lookback!r}.")
    feature_cols, regime_cols = list(feature_cols), list(regime_cols)
    needed = ["ts", "symbol", "close", *feature_cols, *regime_cols]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(
            f"feature frame: missing columns {missing}. "
            "Fix: build it with compute_features and take names from feature_names(spec)."
        )
    symbol_id, symbols = _symbol_ids(frame)
    features = frame.select(feature_cols).to_numpy().astype(np.float32)
    regime = frame.select(regime_cols).to_numpy().astype(np.float32)
    usable = np.isfinite(features).all(axis=1) & np.isfinite(regime).all(axis=1)
    ends = _decision_rows(symbol_id, usable, seq_len, horizon if labelled else 0)
    ts = frame["ts"].cast(pl.Datetime("us")).to_numpy()
    if stride > 1:  # one grid of decision times for the whole panel, so that a cross-section decides together
        ends = ends[np.isin(ts[ends], np.unique(ts[ends])[::stride])]
    close = frame["close"].to_numpy()
    ends = ends[np.lexsort((symbol_id[ends], ts[ends]))]
    label, nxt = _later_row(symbol_id, ends, horizon), _later_row(symbol_id, ends, 1)
    first = np.searchsorted(symbol_id, symbol_id[ends], side="left")
    return SampleSet(
        features=features,
        regime=regime,
        end_row=ends,
        symbol_id=symbol_id[ends],
        t=ts[ends],
        t1=np.where(label >= 0, ts[label], np.datetime64("NaT", "us")),
        t0=ts[np.maximum(ends - (seq_len - 1) - lookback, first)],
        target=np.where(label >= 0, np.log(close[label] / close[ends]), np.nan),
        next_return=np.where(nxt >= 0, close[nxt] / close[ends] - 1, np.nan),
        symbols=symbols,
        row_symbol=symbol_id,
        row_ts=ts,
        feature_names=feature_cols,
        regime_names=regime_cols,
        seq_len=seq_len,
        horizon=horizon,
        lookback=lookback,
    )


def _later_row(symbol_id: np.ndarray, rows: np.ndarray, bars: int) -> np.ndarray:
    """The row ``bars`` bars after each of ``rows`` in the same symbol, or -1 past the symbol's last bar."""
    later = rows + bars
    ok = later < len(symbol_id)
    ok[ok] = symbol_id[later[ok]] == symbol_id[rows[ok]]
    return np.where(ok, later, -1)


def _symbol_ids(frame: pl.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Index of each row's symbol; checks the (symbol, ts) order windows rely on."""
    ordered = frame.select(
        (pl.col("symbol") >= pl.col("symbol").shift(1)).all()
        & (pl.col("ts") > pl.col("ts").shift(1)).over("symbol").all()
    ).item()
    if not ordered:
        raise DataError(
            "feature frame: rows are not sorted by (symbol, ts) with unique ts per symbol. "
            "Fix: pass the frame compute_features returns, or sort it by symbol, ts."
        )
    symbols = frame["symbol"].unique(maintain_order=True).to_list()
    codes = frame["symbol"].cast(pl.Enum(symbols)).to_physical().to_numpy()
    return codes.astype(np.int64), symbols


def _decision_rows(
    symbol_id: np.ndarray, usable: np.ndarray, seq_len: int, horizon: int
) -> np.ndarray:
    """Rows (ascending) that end a full usable window and have a bar ``horizon`` later."""
    rows = np.arange(len(symbol_id))
    first = np.searchsorted(symbol_id, symbol_id, side="left")
    last = np.searchsorted(symbol_id, symbol_id, side="right") - 1
    # The latest unusable row at or before each row (or the row before its symbol starts)
    # bounds the run of usable rows ending there.
    blocker = np.maximum.accumulate(np.maximum(np.where(usable, -1, rows), first - 1))
    run = rows - blocker
    labelled = rows + horizon <= last
    ends = rows[labelled & (run >= seq_len)]
    if len(ends):
        return ends
    longest = int(run[labelled].max(initial=0))
    if longest == 0:
        raise DataError(
            "feature frame: no usable labelled rows (every row has a null feature or lies in the "
            f"last data.horizon={horizon} bars of its symbol). Fix: load more history."
        )
    raise DataError(
        f"data.seq_len={seq_len} is longer than the usable rows of every symbol; the largest "
        f"seq_len that works is {longest}. Fix: lower data.seq_len or load more history."
    )
