"""The violation report: every fill re-checked by a second, independent reading of the rules.

The audit shares nothing with the engine but the rule tables (``rules``, the
law itself) and the fills it is given. It recomputes, per symbol and bar in
a plain loop over integers, the prior closes, the Rule 201 restriction and
the whole LULD state machine (reference price, bands, limit states inside a
bar and at the quote, pauses, reopenings) from the raw bars and quotes, and
moves the quotes by the transient impact that the fills themselves imply.
Prices are read as whole units of $0.0001 with Python integers.

Zero tolerance; each fill is checked for:

- ``fill during LULD pause``;
- ``fill outside LULD band``;
- ``short sale under SSR at or below the bid`` (the bid in force at the fill;
  the short part recomputed from the fills' own position path, resting
  limits executing before the step's marketable order);
- ``fill printed through the quote`` (a marketable buy below the ask or sell
  above the bid);
- ``limit fill the bar never traded through`` (a resting sell at or above
  the bar's high);
- ``fill above the participation cap``;
- ``fill without a quote or volume``.

``recompute`` returns the audit's own rule state so it can be set against
the engine's.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import polars as pl

from dualhrq.market.engine import OK, REASONS, Replay
from dualhrq.market.rules import LULDTable, luld_in_force, ssr_in_force

RULES = ("fill during LULD pause", "fill outside LULD band", "short sale under SSR at or below the bid",
         "fill printed through the quote", "limit fill the bar never traded through",
         "fill above the participation cap", "fill without a quote or volume")


@dataclass(frozen=True)
class AuditState:
    """(T, N) rule state as the audit recomputed it (bands in dollars, NaN without a band)."""

    ssr: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    paused: np.ndarray
    violations: pl.DataFrame


def _units(x: float) -> int | None:
    return None if x != x else round(x * 10_000)


def _tick(units: int) -> int:
    return 100 if units >= 10_000 else 1


def _band(ref: int, row: int, tier: int, double: bool, table: LULDTable) -> tuple[int, int]:
    """Appendix A: (lower, upper) in units, to the nearest cent (half up)."""
    if row < table.mid_floor:
        width = min(ref * table.low_pct, table.low_abs * 100)
    elif row <= table.mid_cap:
        width = ref * table.mid_pct
    else:
        width = ref * (table.tier1_pct if tier == 1 else table.tier2_pct)
    width *= 2 if double else 1
    return (2 * (ref * 100 - width) + 10_000) // 20_000 * 100, (2 * (ref * 100 + width) + 10_000) // 20_000 * 100


def _band_at(at: int, ref: int | None, row: int, tier: int, session: tuple[int, int],
             table: LULDTable) -> tuple[int, int] | None:
    """The band at time ``at`` (us), or None where the plan's phase does not cover it."""
    open_us, close_us = session
    if ref is None or tier not in table.tiers:
        return None
    if not open_us + table.bands_from.total_seconds() * 1e6 <= at <= close_us - table.bands_until.total_seconds() * 1e6:
        return None
    double = table.double_opening and open_us <= at < open_us + table.opening_window.total_seconds() * 1e6
    if table.double_closing and close_us - table.closing_window.total_seconds() * 1e6 <= at <= close_us:
        double = double or not table.closing_double_tier2_low_only or tier == 1 or row <= table.mid_cap
    return _band(ref, row, tier, double, table)


def _symbol(i: int, replay: Replay, out: dict, rows: list) -> None:
    """Recompute one symbol's rule state bar by bar and check its fills."""
    g = replay.grid
    cols = {k: g.arrays[k][:, i].tolist() for k in ("open", "high", "low", "close", "trades", "volume", "bid", "ask")}
    fill, passive, marketable = (getattr(replay, k)[:, i].tolist() for k in ("fill", "passive", "marketable"))
    price, limit_price = replay.price[:, i].tolist(), replay.limit_price[:, i].tolist()
    times, starts = g.time_us.tolist(), g.bar_ts.astype("datetime64[us]").astype(np.int64).tolist()
    day_of, tier = g.day.tolist(), int(g.tier[i])
    costs, cap = replay.costs, replay.execution.participation
    transient = costs.slippage == "exp_decay"
    prev_close = last_close = None
    day = -1
    carry = today = False
    pos = d = 0.0
    prev_time = times[0]
    for t in range(len(times)):
        now = times[t]
        if day_of[t] != day:  # a new session
            if day >= 0:
                prev_close, carry = last_close, today
            day = day_of[t]
            table, rule = luld_in_force(g.days[day]), ssr_in_force(g.days[day])
            session = (int(g.session_open_us[day]), int(g.session_close_us[day]))
            end = int(g.day_start[day + 1])
            opening = next((_units(cols["open"][k]) for k in range(t, end) if cols["open"][k] == cols["open"][k]), None)
            row = prev_close if prev_close is not None else opening
            ref = opening if opening is not None else prev_close
            today, limit_since, pause_until, paused = False, -1, 0, False
            window: deque[tuple[int, int, int]] = deque()  # (time, trades, trades x 4 x price)
            weight = weighted = 0
            span = table.ref_window.total_seconds() * 1e6
            lim_us, pause_us = table.limit_state_limit.total_seconds() * 1e6, table.pause.total_seconds() * 1e6
        o, h, lo, c = (_units(cols[k][t]) for k in ("open", "high", "low", "close"))
        trades = int(cols["trades"][t])
        traded = trades > 0 and None not in (o, h, lo, c)
        if c is not None:
            last_close = c
        # Rule 201
        if lo is not None and prev_close is not None and 100 * lo <= (100 - rule.trigger_pct) * prev_close:
            today = True
        restricted = today or carry
        # quotes moved by the fills' own transient impact
        if transient:
            d *= math.exp(-((now - prev_time) / 1e6) / costs.decay_s)
        prev_time = now
        bid, ask = _units(cols["bid"][t]), _units(cols["ask"][t])
        if bid is not None and ask is not None and d:
            mid = 0.5 * (bid + ask)
            step = _tick(mid)
            shift = round(d * mid / step) * step
            bid, ask = bid + shift, ask + shift
        # LULD
        if limit_since >= 0 and now - limit_since > lim_us:
            pause_until, paused, limit_since = limit_since + lim_us + pause_us, True, -1
        reopen = paused and now >= pause_until
        if reopen:
            paused = False
            reopen_price = (o + h + lo + c + 2) // 4 if traded else (
                (bid + ask + 1) // 2 if bid is not None and ask is not None else None)
            ref = reopen_price if reopen_price is not None else ref
        before = _band_at(starts[t], ref, row, tier, session, table)
        if before is not None and traded and not paused and not reopen:
            if lo <= before[0] or h >= before[1]:
                limit_since = starts[t] if limit_since < 0 else limit_since
            if lo < before[0] or h > before[1]:
                pause_until, paused, limit_since = starts[t] + lim_us + pause_us, True, -1
        if traded:
            window.append((now, trades, trades * (o + h + lo + c)))
            weight, weighted = weight + trades, weighted + trades * (o + h + lo + c)
        while window and window[0][0] <= now - span:
            _, n, wp = window.popleft()
            weight, weighted = weight - n, weighted - wp
        if weight and not paused and not reopen:
            mean = (2 * weighted + 4 * weight) // (8 * weight)
            if ref is None or abs(mean - ref) * 100 >= table.ref_move_pct * ref:
                ref = mean
        band = _band_at(now, ref, row, tier, session, table)
        limit = band is not None and not paused and bid is not None and (ask <= band[0] or bid >= band[1])
        limit_since = (now if limit_since < 0 else limit_since) if limit else -1
        if limit and now - limit_since > lim_us:
            pause_until, paused, limit_since = limit_since + lim_us + pause_us, True, -1
        out["ssr"][t, i], out["paused"][t, i] = restricted, paused
        if band is not None:
            out["lower"][t, i], out["upper"][t, i] = band[0] / 10_000, band[1] / 10_000
        # the fills
        if fill[t] == 0:
            continue
        found = []
        volume = cols["volume"][t]
        if bid is None or ask is None or not volume > 0:
            found.append("fill without a quote or volume")
        if paused:
            found.append("fill during LULD pause")
        if abs(fill[t]) > math.floor(cap * volume):
            found.append("fill above the participation cap")
        parts = [(passive[t], _units(limit_price[t]), True), (marketable[t], _units(price[t]), False)]
        for qty, px, resting in parts:
            if qty == 0:
                continue
            if px is None or (band is not None and not band[0] <= px <= band[1]):
                found.append("fill outside LULD band")
            short = max(-(pos + qty), 0.0) - max(-pos, 0.0) if qty < 0 else 0.0
            pos += qty
            if px is None or bid is None:
                continue
            if short > 0 and restricted and not px > bid:
                found.append("short sale under SSR at or below the bid")
            if resting and (qty > 0 or h is None or not h > px):
                found.append("limit fill the bar never traded through")
            if not resting and ((qty > 0 and px < ask) or (qty < 0 and px > bid)):
                found.append("fill printed through the quote")
            if not resting and transient and volume > 0:
                d += costs.impact_coef * qty / volume
        for rule_name in dict.fromkeys(found):
            rows.append((t, i, rule_name))


def recompute(replay: Replay) -> AuditState:
    """The audit's rule state and its violations, one row per (fill, broken rule)."""
    shape = replay.grid.shape
    out = {"ssr": np.zeros(shape, dtype=bool), "paused": np.zeros(shape, dtype=bool),
           "lower": np.full(shape, np.nan), "upper": np.full(shape, np.nan)}
    rows: list[tuple[int, int, str]] = []
    for i in range(shape[1]):
        _symbol(i, replay, out, rows)
    g = replay.grid
    t = np.array([r[0] for r in rows], dtype=np.int64)
    s = np.array([r[1] for r in rows], dtype=np.int64)
    frame = pl.DataFrame({
        "ts": g.bar_ts[t], "symbol": pl.Series(np.asarray(g.symbols, dtype=object)[s], dtype=pl.String),
        "rule": pl.Series([r[2] for r in rows], dtype=pl.String), "fill": replay.fill[t, s],
        "price": replay.price[t, s], "limit_price": replay.limit_price[t, s], "bid": g.bid[t, s],
        "ask": g.ask[t, s], "lower": out["lower"][t, s], "upper": out["upper"][t, s],
    }).sort("ts", "symbol", "rule")
    return AuditState(violations=frame, **out)


def violations(replay: Replay) -> pl.DataFrame:
    """One row per (fill, broken rule), from the independent recomputation."""
    return recompute(replay).violations


def daily_report(replay: Replay, audit: AuditState | None = None) -> pl.DataFrame:
    """Per trading day: fills, orders held back by reason and the violation count (which must be zero)."""
    audit = audit if audit is not None else recompute(replay)
    day = replay.grid.day
    n_days = len(replay.grid.days)
    per_day = {"date": pl.Series(replay.grid.days, dtype=pl.Date),
               "fills": np.bincount(day, (replay.fill != 0).sum(axis=1), n_days).astype(np.int64)}
    for code, name in REASONS.items():
        per_day[f"rejected_{name}"] = np.bincount(day, (replay.reason == code).sum(axis=1), n_days).astype(np.int64)
    per_day["rejections"] = np.bincount(day, (replay.reason != OK).sum(axis=1), n_days).astype(np.int64)
    counts = audit.violations.group_by(pl.col("ts").dt.date().alias("date")).len("violations")
    return (pl.DataFrame(per_day).join(counts, on="date", how="left")
            .with_columns(pl.col("violations").fill_null(0).cast(pl.Int64)))


def summary_line(report: pl.DataFrame) -> str:
    """One sentence for logs and reports."""
    v, r, f = (int(report[c].sum()) for c in ("violations", "rejections", "fills"))
    verdict = "no rule was broken" if v == 0 else f"{v} executions broke a rule"
    return (f"{report.height} trading days, {f} fills, {r} orders held back by the rule checks or the "
            f"participation cap, {v} violations: {verdict}.")
