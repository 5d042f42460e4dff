"""The strict replay as a plain per-bar Python loop: one symbol, one bar, one scalar at a time.

It restates ``ssr``, ``luld`` and ``engine`` without arrays: the readable
form of the rules, the baseline the throughput benchmark compares the
vectorised replay with, and the twin a test checks it against. It reads the
same rule tables and cost model; nothing else is shared.
"""

from __future__ import annotations

import math

import numpy as np

from dualhrq.market.costs import CostModel
from dualhrq.market.engine import BAND, NO_QUOTE, OK, PAUSE, SSR
from dualhrq.market.grid import MarketGrid
from dualhrq.market.rules import LULDTable, luld_in_force, ssr_in_force


def _band_width(ref: float, row_price: float, tier: int, double: bool, table: LULDTable) -> float:
    if row_price < table.mid_floor:
        width = min(table.low_pct * ref, table.low_abs)
    elif row_price <= table.mid_cap:
        width = table.mid_pct * ref
    else:
        width = (table.tier1_pct if tier == 1 else table.tier2_pct) * ref
    return 2 * width if double else width


def _is_doubled(now: int, open_us: int, close_us: int, row_price: float, tier: int, table: LULDTable) -> bool:
    if table.double_opening and open_us <= now < open_us + table.opening_window.total_seconds() * 1e6:
        return True
    closing = close_us - table.closing_window.total_seconds() * 1e6 <= now <= close_us
    if not closing:
        return False
    return not table.closing_double_tier2_low_only or tier == 1 or row_price <= table.mid_cap


def _slip(costs: CostModel, qty: float, volume: float, sigma: float, displacement: float) -> float:
    part = abs(qty) / volume
    if costs.slippage == "none":
        return 0.0
    if costs.slippage == "linear":
        return costs.impact_coef * part
    if costs.slippage == "sqrt":
        return costs.impact_coef * sigma * math.sqrt(part)
    return costs.impact_coef * part + math.copysign(1.0, qty) * displacement


def _nan(x: float) -> bool:
    return x != x


def replay_loop(grid: MarketGrid, target: np.ndarray, costs: CostModel) -> dict[str, np.ndarray]:
    """Position, fill, price, reason, equity and the rule state, each (T, N), from a per-bar loop."""
    T, N = grid.shape
    cols = {k: grid.arrays[k].T.tolist() for k in ("open", "high", "low", "close", "volume", "trades", "bid", "ask")}
    targets = target.T.tolist()
    times = grid.time_us.tolist()
    day_of = grid.day.tolist()
    out = {k: [[0.0] * T for _ in range(N)] for k in ("position", "fill", "price", "equity", "lower", "upper")}
    out.update({k: [[0] * T for _ in range(N)] for k in ("reason", "ssr", "paused")})
    last_steps = {int(e) - 1 for e in grid.day_start[1:]}
    for i in range(N):
        o, h, lo_, c, vol, trd, bid, ask = (cols[k][i] for k in ("open", "high", "low", "close", "volume", "trades",
                                                                   "bid", "ask"))
        tier = int(grid.tier[i])
        pos = cash = displacement = 0.0
        rets: list[float] = []
        mark = 0.0
        ssr_carry = False
        prev_time = times[0]
        day_ref: dict = {}
        for t in range(T):
            d = day_of[t]
            now = times[t]
            if t == 0 or day_of[t - 1] != d:  # a new day: reset the day's rule state
                table = luld_in_force(grid.days[d])
                rule = ssr_in_force(grid.days[d])
                prev = float(grid.prev_close[d, i])
                first_open = next((o[k] for k in range(t, int(grid.day_start[d + 1])) if not _nan(o[k])), math.nan)
                row_price = prev if not _nan(prev) else first_open
                ref = first_open if not _nan(first_open) else prev
                ssr_today = False
                limit_since, pause_until, in_pause = -1, 0, False
                window: list[tuple[int, float, float]] = []
                day_ref = {"open": int(grid.session_open_us[d]), "close": int(grid.session_close_us[d])}
            # Rule 201
            if not _nan(lo_[t]) and not _nan(prev) and lo_[t] <= (1.0 - rule.trigger_drop) * prev:
                ssr_today = True
            restricted = ssr_today or ssr_carry
            # LULD
            w_us = table.ref_window.total_seconds() * 1e6
            own = math.nan
            if trd[t] > 0 and not _nan(o[t]):
                own = (o[t] + h[t] + lo_[t] + c[t]) / 4.0
                window.append((now, trd[t], trd[t] * own))
            window = [x for x in window if x[0] > now - w_us]
            wsum = sum(x[1] for x in window)
            cand = sum(x[2] for x in window) / wsum if wsum > 0 else math.nan
            limit_us = table.limit_state_limit.total_seconds() * 1e6
            if limit_since >= 0 and now - limit_since > limit_us:
                pause_until = limit_since + limit_us + table.pause.total_seconds() * 1e6
                in_pause = True
                limit_since = -1
            reopen = in_pause and now >= pause_until
            mid = 0.5 * (bid[t] + ask[t])
            if reopen:
                price = own if not _nan(own) else mid
                if not _nan(price):
                    ref = price
                in_pause = False
            if not in_pause and not reopen and not _nan(cand) and abs(cand / ref - 1.0) >= table.ref_move:
                ref = cand
            width = _band_width(ref, row_price, tier,
                                _is_doubled(now, day_ref["open"], day_ref["close"], row_price, tier, table), table)
            lower, upper = round((ref - width) * 100) / 100, round((ref + width) * 100) / 100
            in_limit = not in_pause and (ask[t] <= lower or bid[t] >= upper)
            if in_limit:
                limit_since = now if limit_since < 0 else limit_since
            else:
                limit_since = -1
            # volatility for the square-root law: std of the last vol_window one-bar log returns
            r = 0.0 if t == 0 or _nan(c[t]) or _nan(c[t - 1]) else math.log(c[t] / c[t - 1])
            rets.append(r)
            recent = rets[-costs.vol_window:]
            m = sum(recent) / len(recent)
            sigma = math.sqrt(max(sum(x * x for x in recent) / len(recent) - m * m, 0.0)
                              * len(recent) / max(len(recent) - 1, 1))
            # the order
            displacement *= costs.decay((now - prev_time) / 1e6)
            prev_time = now
            order = 0.0 if _nan(targets[i][t]) else targets[i][t] - pos
            qty, reason, fill_price = 0.0, OK, math.nan
            if order != 0:
                long_part = min(-order, max(pos, 0.0)) if order < 0 else 0.0
                short_part = -order - long_part if order < 0 else 0.0
                if _nan(mid) or not vol[t] > 0:
                    reason = NO_QUOTE
                elif in_pause:
                    reason = PAUSE
                else:
                    touch = ask[t] if order > 0 else bid[t]
                    price = touch + math.copysign(1.0, order) * mid * _slip(costs, order, vol[t], sigma, displacement)
                    if not lower <= price <= upper:
                        reason = BAND
                    elif restricted and not price > bid[t] and short_part > 0:
                        reason, qty = SSR, -long_part
                    else:
                        qty = order
                if qty != 0:
                    touch = ask[t] if qty > 0 else bid[t]
                    fill_price = touch + math.copysign(1.0, qty) * mid * _slip(costs, qty, vol[t], sigma,
                                                                               displacement)
                    cash -= qty * fill_price + abs(qty) * costs.commission_per_share \
                        + abs(qty) * fill_price * costs.commission_bps * 1e-4
                    if costs.slippage == "exp_decay":
                        displacement += costs.impact_coef * qty / vol[t]
                    pos += qty
            if not _nan(mid):
                mark = mid
            if t in last_steps:
                cash -= max(-pos, 0.0) * mark * costs.borrow_bps * 1e-4 / 252.0
                ssr_carry = ssr_today
            rec = {"position": pos, "fill": qty, "price": fill_price, "equity": cash + pos * mark,
                   "lower": lower, "upper": upper, "reason": reason, "ssr": int(restricted), "paused": int(in_pause)}
            for k, v in rec.items():
                out[k][i][t] = v
    return {k: np.asarray(v).T for k, v in out.items()}
