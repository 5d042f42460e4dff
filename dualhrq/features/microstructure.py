"""Intraday pattern features from trades and quotes: VWAP, order flow, depth, ticks, spreads.

Each function returns a polars expression over one symbol's bars in time
order (the engine adds ``.over("symbol")``, or ``.over("symbol", "session")``
for the session VWAP). All windows trail, and every value is a log ratio, a
bounded fraction or a z-score, so no price level or size scale leaks in.
"""

from __future__ import annotations

import polars as pl


def typical_price(high: pl.Expr, low: pl.Expr, close: pl.Expr) -> pl.Expr:
    """(H + L + C) / 3: the bar's price for VWAP when trades are not available."""
    return (high + low + close) / 3


def vwap(price: pl.Expr, volume: pl.Expr) -> pl.Expr:
    """Cumulative volume-weighted average price since the first bar of the partition (the session)."""
    return (price * volume).cum_sum() / volume.cum_sum()


def vwap_deviation(close: pl.Expr, vwap_: pl.Expr) -> pl.Expr:
    """ln(C_t / VWAP_t): how far the price has run from the session's average traded price."""
    return (close / vwap_).log()


def tick_sign(close: pl.Expr) -> pl.Expr:
    """Tick rule (Lee & Ready 1991): +1 on an uptick, -1 on a downtick, a zero tick keeps the last sign.

    0 before the first price change.
    """
    change = close.diff().sign()
    return pl.when(change != 0).then(change).forward_fill().fill_null(0.0)


def depth_imbalance(bid_size: pl.Expr, ask_size: pl.Expr, window: int) -> pl.Expr:
    """Mean of (Q_bid - Q_ask) / (Q_bid + Q_ask) over ``window`` bars, in [-1, 1]; 0 when both sides are empty.

    A level of displayed depth at the touch, not a flow: it leans toward the
    side of the next mid-price move (Gould & Bonart 2016, "queue imbalance").
    """
    depth = bid_size + ask_size
    return pl.when(depth > 0).then((bid_size - ask_size) / depth).otherwise(0.0).rolling_mean(window)


def order_flow_event(bid: pl.Expr, bid_size: pl.Expr, ask: pl.Expr, ask_size: pl.Expr) -> pl.Expr:
    """Cont, Kukanov & Stoikov's (2014) order-flow contribution ``e_n`` of the quote at bar n vs bar n-1.

    ``e_n = 1{Pb_n >= Pb_n-1} qb_n - 1{Pb_n <= Pb_n-1} qb_n-1 - 1{Pa_n <= Pa_n-1} qa_n + 1{Pa_n >= Pa_n-1} qa_n-1``:
    a higher bid adds its whole size as demand, a lower bid removes the old one, an unchanged bid adds
    the change in its size; the ask side mirrors it as supply. Null on the first bar.
    """
    prev_bid, prev_bid_size, prev_ask, prev_ask_size = bid.shift(1), bid_size.shift(1), ask.shift(1), ask_size.shift(1)
    bid_flow = (pl.when(bid >= prev_bid).then(bid_size).otherwise(0.0)
                - pl.when(bid <= prev_bid).then(prev_bid_size).otherwise(0.0))
    ask_flow = (pl.when(ask <= prev_ask).then(ask_size).otherwise(0.0)
                - pl.when(ask >= prev_ask).then(prev_ask_size).otherwise(0.0))
    return pl.when(prev_bid.is_not_null()).then(bid_flow - ask_flow)


def order_flow_imbalance(bid: pl.Expr, bid_size: pl.Expr, ask: pl.Expr, ask_size: pl.Expr, window: int) -> pl.Expr:
    """CKS order-flow imbalance over ``window`` bars in units of the window's average depth at the touch.

    The sum of :func:`order_flow_event` over the window; Cont, Kukanov & Stoikov (2014) find the price
    change over an interval close to linear in OFI with a slope inversely proportional to the average
    depth ``AD = mean((qb + qa) / 2)``, so ``OFI / AD`` is the price pressure free of the size scale.
    Bar quotes are snapshots: flow that comes and goes within a bar is not seen. 0 when ``AD = 0``.
    """
    flow = order_flow_event(bid, bid_size, ask, ask_size).rolling_sum(window)
    depth = ((bid_size + ask_size) / 2).rolling_mean(window)
    return pl.when(depth > 0).then(flow / depth).when(flow.is_not_null()).then(0.0)


def signed_volume_imbalance(close: pl.Expr, volume: pl.Expr, window: int) -> pl.Expr:
    """sum(tick sign * V) / sum(V) over ``window`` bars (0 without volume): order flow when no quote sizes
    exist."""
    total = volume.rolling_sum(window)
    return pl.when(total > 0).then((tick_sign(close) * volume).rolling_sum(window) / total).when(total == 0).then(0.0)


def uptick_share(close: pl.Expr, window: int) -> pl.Expr:
    """Share of the last ``window`` price changes that were upticks, minus 1/2 (0 if none moved)."""
    change = close.diff().sign()
    moves = (change != 0).cast(pl.Float64).rolling_sum(window)
    ups = (change > 0).cast(pl.Float64).rolling_sum(window)
    return pl.when(moves > 0).then(ups / moves - 0.5).when(moves == 0).then(0.0)


def zero_return_share(close: pl.Expr, window: int) -> pl.Expr:
    """Share of bars without a price change over ``window`` bars: a stale, illiquid tape is high."""
    return (close.diff() == 0).cast(pl.Float64).rolling_mean(window)


def relative_spread(bid: pl.Expr, ask: pl.Expr) -> pl.Expr:
    """ln(ask / bid): the quoted spread as a fraction of the price."""
    return (ask / bid).log()


def mean_trade_size_ratio(volume: pl.Expr, trades: pl.Expr, short: int, long: int) -> pl.Expr:
    """ln of the mean trade size over ``short`` bars over that over ``long`` bars: block trading shows up."""
    def size(window: int) -> pl.Expr:
        return volume.rolling_sum(window) / trades.rolling_sum(window).clip(lower_bound=1)

    return (size(short) / size(long)).log()


def session_progress(ts: pl.Expr, open_minute: int = 9 * 60 + 30, minutes: int = 390) -> pl.Expr:
    """Minutes since the 09:30 open over the full session length: 0 at the open, ~1 at the close."""
    minute = ts.dt.hour().cast(pl.Int32) * 60 + ts.dt.minute().cast(pl.Int32)
    return (minute - open_minute).cast(pl.Float64) / minutes
