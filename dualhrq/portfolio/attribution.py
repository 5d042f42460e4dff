"""Post-trade analysis of a strict replay: P&L by symbol and implementation shortfall by cost component.

Implementation shortfall (Perold 1988) measures each fill against the
arrival price, the undisplaced mid at the bar where the order's decision
was made. Per fill of ``q`` shares at price ``p`` at bar ``u``::

    q (p - arrival) + fee = q (mid_u - arrival)   delay: the market moved while the order worked
                          + q (p - mid_u) split into
                              spread   half the quoted spread crossed (negative for a passive fill)
                              impact   the rest: the impact model and the replay's own transient displacement
                          + fee        commission

so the four parts add up to the shortfall exactly. Orders a decision never
filled (cancelled, refused by a rule or the cap) cost no shortfall here;
their opportunity cost is not counted.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from dualhrq.market.engine import Replay


def symbol_pnl(rec: Replay) -> pl.DataFrame:
    """Net P&L of each symbol over the replay (cash plus the marked position at the last step), with its costs."""
    last = rec.equity[-1] if rec.equity.shape[0] else np.zeros(len(rec.grid.symbols))
    costs = {k: getattr(rec, k).sum(axis=0) for k in ("spread_cost", "impact_cost", "commission", "borrow")}
    return pl.DataFrame({"symbol": list(rec.grid.symbols), "net_pnl": last, **costs})


def arrival_mid(rec: Replay) -> np.ndarray:
    """(T, N) undisplaced mid at the bar of the decision in force (NaN before a symbol's first decision)."""
    target = rec.target
    T, N = target.shape
    decided = np.full(N, np.nan)
    new = np.zeros((T, N), dtype=bool)
    for t in range(T):  # a decision is a finite target that differs from the last one, as the engine reads it
        new[t] = np.isfinite(target[t]) & (target[t] != decided)
        decided = np.where(new[t], target[t], decided)
    at = np.maximum.accumulate(np.where(new, np.arange(T)[:, None], -1), axis=0)
    mid = rec.grid.mid
    return np.where(at >= 0, mid[np.maximum(at, 0), np.arange(N)], np.nan)


def implementation_shortfall(rec: Replay) -> dict[str, float]:
    """Dollar shortfall against the arrival price and its parts, and the total in bp of the traded value."""
    arrival = arrival_mid(rec)
    with np.errstate(invalid="ignore"):
        price_part = np.nan_to_num(rec.marketable * (rec.price - arrival)) + np.nan_to_num(
            rec.passive * (rec.limit_price - arrival))
    fee = float(rec.commission.sum())
    total = float(price_part.sum()) + fee
    spread, impact = float(rec.spread_cost.sum()), float(rec.impact_cost.sum())
    traded = float(rec.traded_value().sum())
    return {"shortfall": total, "delay": total - spread - impact - fee, "spread": spread, "impact": impact,
            "commission": fee, "traded_value": traded,
            "shortfall_bps": total / traded * 1e4 if traded > 0 else float("nan")}


def book_contributions(weights: pl.DataFrame, books: pl.DataFrame) -> dict[str, float]:
    """Each book's contribution to the portfolio's gross return: the sum over days of weight x book return."""
    names = [c for c in weights.columns if c != "ts"]
    joined = weights.join(books, on="ts", suffix="_r")
    return {n: float((joined[n] * joined[f"{n}_r"]).sum()) for n in names}
