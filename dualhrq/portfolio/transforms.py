"""Signal transforms of Book B: from the model's signal to a raw target in [-1, 1] per (ts, symbol).

Each transform is a polars expression over the prediction frame, evaluated
per symbol (time-series transforms, in time order) or per timestamp
(cross-sectional), using only the current and earlier signals.

- ``raw``: the model's signal, clipped to [-1, 1].
- ``momentum_reversal``: the signal's fast minus slow exponential average
  (a MACD of the signal, Appel 1979): long while conviction rises, short
  when it reverses, scaled by ``tanh`` to [-1, 1].
- ``mean_reversion``: minus the z-score of the signal against its trailing
  ``window`` mean and standard deviation, clipped to [-1, 1]: fade the
  signal's excursions from its recent level.
- ``cross_sectional_momentum``: the signal's rank among the symbols at the
  same timestamp, mapped to [-1, 1] (Jegadeesh and Titman 1993 style
  long-the-top, short-the-bottom): dollar-neutral by construction.
"""

from __future__ import annotations

import polars as pl

from dualhrq.config import invalid

TRANSFORMS = ("raw", "momentum_reversal", "mean_reversion", "cross_sectional_momentum")


def transform_expr(name: str, fast: int = 5, slow: int = 20, window: int = 20) -> pl.Expr:
    """The expression computing column ``target`` from ``signal`` (frame sorted by symbol, ts)."""
    s = pl.col("signal")
    if name == "raw":
        expr = s.clip(-1.0, 1.0)
    elif name == "momentum_reversal":
        if not 1 <= fast < slow:
            raise invalid("fast", fast, f">= 1 and below slow ({slow})")
        macd = s.ewm_mean(span=fast, adjust=False) - s.ewm_mean(span=slow, adjust=False)
        expr = (macd / s.abs().ewm_mean(span=slow, adjust=False).clip(1e-12, None)).tanh().over("symbol")
    elif name == "mean_reversion":
        if window < 2:
            raise invalid("window", window, ">= 2 signals")
        mean = s.rolling_mean(window, min_samples=2)
        std = s.rolling_std(window, min_samples=2)
        expr = (-(s - mean) / std).fill_nan(0.0).fill_null(0.0).clip(-1.0, 1.0).over("symbol")
    elif name == "cross_sectional_momentum":
        n = pl.len().over("ts")
        rank = s.rank("average").over("ts")
        expr = pl.when(n > 1).then(2.0 * (rank - 1.0) / (n - 1.0) - 1.0).otherwise(0.0)
    else:
        raise invalid("transform", name, f"one of {list(TRANSFORMS)}")
    return expr.alias("target")
