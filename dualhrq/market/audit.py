"""The violation report: every execution re-checked against the market's rule state, per day.

Zero tolerance: a fill during an LULD pause, a fill outside the LULD band, or
a short sale under Rule 201 at or below the national best bid is a
violation. The audit reads only the fills and the market state, not the
order checks that let the fills through, so it also catches executions that
reached the book some other way.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from dualhrq.market.engine import OK, REASONS, Replay


def violations(replay: Replay) -> pl.DataFrame:
    """One row per (fill, broken rule)."""
    luld, ssr, grid = replay.rules.luld, replay.rules.ssr, replay.grid
    filled = replay.fill != 0
    price = replay.price
    with np.errstate(invalid="ignore"):
        checks = {
            "fill during LULD pause": filled & luld.paused,
            "fill outside LULD band": filled & ~((price >= luld.lower) & (price <= luld.upper)),
            "short sale at or below bid under SSR": (replay.short_fill > 0) & ssr & ~(price > grid.bid),
        }
    rows = []
    for rule, hit in checks.items():
        t, s = np.nonzero(hit)
        rows.append(pl.DataFrame({
            "ts": grid.bar_ts[t], "symbol": pl.Series(np.asarray(grid.symbols, dtype=object)[s], dtype=pl.String),
            "rule": pl.Series([rule] * t.size, dtype=pl.String), "fill": replay.fill[t, s], "price": price[t, s],
            "bid": grid.bid[t, s], "lower": luld.lower[t, s], "upper": luld.upper[t, s],
        }))
    return pl.concat(rows).sort("ts", "symbol")


def daily_report(replay: Replay) -> pl.DataFrame:
    """Per trading day: fills, rejections by reason and the violation count (which must be zero)."""
    day = replay.grid.day
    n_days = len(replay.grid.days)
    per_day = {"date": pl.Series(replay.grid.days, dtype=pl.Date),
               "fills": np.bincount(day, (replay.fill != 0).sum(axis=1), n_days).astype(np.int64)}
    for code, name in REASONS.items():
        per_day[f"rejected_{name}"] = np.bincount(day, (replay.reason == code).sum(axis=1), n_days).astype(np.int64)
    per_day["rejections"] = np.bincount(day, (replay.reason != OK).sum(axis=1), n_days).astype(np.int64)
    bad = violations(replay)
    counts = bad.group_by(pl.col("ts").dt.date().alias("date")).len("violations")
    return pl.DataFrame(per_day).join(counts, on="date", how="left").with_columns(pl.col("violations").fill_null(0))


def summary_line(report: pl.DataFrame) -> str:
    """One sentence for logs and reports."""
    v, r, f = (int(report[c].sum()) for c in ("violations", "rejections", "fills"))
    verdict = "no rule was broken" if v == 0 else f"{v} executions broke a rule"
    return (f"{report.height} trading days, {f} fills, {r} orders rejected by the rule checks, "
            f"{v} violations: {verdict}.")
