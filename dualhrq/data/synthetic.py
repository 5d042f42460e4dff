"""A seeded synthetic intraday market, for what no bundled data covers.

Everything here is SYNTHETIC: a model of a market, not a record of one. It
exists so intraday features, the rule-exact simulator (SEC Rule 201 SSR,
LULD bands) and option features can be developed and tested without a data
vendor. Runs that train on it are tagged ``data.synthetic``.

The model, per trading day ``d`` and minute ``t`` of symbol ``i``:

- a two-state market volatility regime (calm / stressed), a daily Markov
  chain shared by all symbols;
- log-return ``r = beta_i * market + idiosyncratic``, both scaled by an
  intraday U-shape and the regime, so symbols move together;
- Poisson jumps, an overnight gap on each day's first bar, and rare events:
  ``crash`` (a 12-20% decline from the prior close over 20-60 minutes, which
  trips SSR) and ``spike`` (a move of 1.6x the LULD band within 2 minutes,
  partly reverted, which trips LULD);
- quotes around the efficient price with a regime-dependent spread on a cent
  grid; the bar's close is the last trade, at the bid or the ask (so closes
  carry bid-ask bounce, the microstructure noise TSRV is built for);
- quote-size imbalance that weakly predicts the next minute's return, and
  volume and trade counts that rise with |return|.

Bar columns (``INTRADAY_BAR_SCHEMA`` of :mod:`dualhrq.data.schema`, the
contract shared with the simulator): ``ts`` Datetime("us"), naive
America/New_York wall-clock start of the bar, 09:30..15:59 (09:30..12:59 on
early-close days); ``symbol``; ``open, high, low, close, volume`` Float64;
``trades`` Int64; ``bid, ask, bid_size, ask_size`` Float64 (quotes at the
bar's close); ``luld_tier`` Int8 (1 for even-numbered symbols, 2 for odd
ones, so a symbol's tier does not depend on ``n_symbols``). Sorted by
(symbol, ts).

Symbol ``i`` draws from its own random stream, so it is the same whatever
``n_symbols`` is; only the shared market path depends on ``seed`` alone.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path

import numpy as np
import polars as pl
from polars.io.plugins import register_io_source

from dualhrq.config import NonNegativeInt, Probability, check_fields, check_value, positive_int
from dualhrq.data.schema import INTRADAY_BAR_SCHEMA
from dualhrq.errors import ConfigError
from dualhrq.primitives.bsm import bsm_price

MINUTES_FULL_DAY = 390  # 09:30..15:59
MINUTES_EARLY_CLOSE = 210  # 09:30..12:59
_MINUTES_PER_YEAR = 252 * MINUTES_FULL_DAY


@dataclass(frozen=True)
class MarketParams:
    """Knobs of the synthetic market; volatilities are annualised, rates per symbol-day."""

    market_vol: tuple[float, float] = (0.15, 0.45)  # calm, stressed
    regime_stay: tuple[float, float] = (0.92, 0.80)  # daily probability of staying in each regime
    idio_vol: tuple[float, float] = (0.10, 0.25)  # range of per-symbol idiosyncratic volatility
    beta: tuple[float, float] = (0.6, 1.4)
    price: tuple[float, float] = (15.0, 300.0)  # range of starting prices (log-uniform)
    jump_rate: Probability = 0.3  # jumps per symbol-day
    jump_size: float = 0.006  # sd of a jump's log size
    gap_vol: float = 0.008  # sd of the idiosyncratic overnight gap
    crash_rate: Probability = 0.01  # 12-20% declines per symbol-day
    spike_rate: Probability = 0.01  # LULD-tripping moves per symbol-day
    spread_bps: tuple[float, float] = (1.0, 6.0)  # range of per-symbol half-spreads in calm markets
    imbalance_signal: float = 0.15  # next-minute return per unit quote imbalance, in minute vols

    def __post_init__(self) -> None:
        check_fields(self)


# ---------------------------------------------------------------- calendar


def _easter(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous Meeus/Jones/Butcher algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month, day = divmod(h + l_ - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th (1-based; -1 = last) given weekday (Mon=0) of a month."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: date) -> date:
    """A fixed-date holiday on a weekend is observed on the Friday before or Monday after."""
    return day - timedelta(days=1) if day.weekday() == 5 else day + timedelta(days=day.weekday() == 6)


@cache
def holidays(year: int) -> frozenset[date]:
    """The exchange holidays this market keeps: the ten NYSE full-day closures."""
    days = {
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        _easter(year) - timedelta(days=2),  # Good Friday
        _nth_weekday(year, 5, 0, -1),  # Memorial Day
        _observed(date(year, 7, 4)),
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
        _observed(date(year, 12, 25)),
    }
    if date(year, 1, 1).weekday() != 5:  # a Saturday New Year is not moved back into December
        days.add(_observed(date(year, 1, 1)))
    if year >= 2022:
        days.add(_observed(date(year, 6, 19)))  # Juneteenth
    return frozenset(days)


def is_early_close(day: date) -> bool:
    """13:00 closes: July 3, the day after Thanksgiving and December 24 (when trading days)."""
    after_thanksgiving = _nth_weekday(day.year, 11, 3, 4) + timedelta(days=1)
    return day in {date(day.year, 7, 3), after_thanksgiving, date(day.year, 12, 24)}


def trading_calendar(start: str | date, n_days: int) -> pl.DataFrame:
    """``date``, ``early_close`` and ``minutes`` of the first ``n_days`` trading days from ``start``."""
    day = _parse_start(start)
    positive_int(n_days, "n_days")
    days: list[date] = []
    while len(days) < n_days:
        if day.weekday() < 5 and day not in holidays(day.year):
            days.append(day)
        day += timedelta(days=1)
    early = [is_early_close(d) for d in days]
    return pl.DataFrame({
        "date": days,
        "early_close": early,
        "minutes": [MINUTES_EARLY_CLOSE if e else MINUTES_FULL_DAY for e in early],
    }, schema={"date": pl.Date, "early_close": pl.Boolean, "minutes": pl.Int32})


def _parse_start(start: str | date) -> date:
    if isinstance(start, datetime):
        return start.date()
    if isinstance(start, date):
        return start
    try:
        return date.fromisoformat(str(start))
    except ValueError:
        raise ConfigError(f"start={start!r} is not an ISO date. Fix: write it as YYYY-MM-DD.", field="start") from None


# ---------------------------------------------------------------- market


@dataclass(frozen=True)
class _Market:
    """The minute grid and every path the symbols share."""

    calendar: pl.DataFrame
    ts: np.ndarray  # datetime64[us] per minute
    day: np.ndarray  # trading-day index per minute
    minute: np.ndarray  # minute of the session per minute
    first_bar: np.ndarray  # bool, first bar of a day after the first day
    shape: np.ndarray  # intraday volatility multiplier (U-shape, mean ~1)
    regime: np.ndarray  # 0 calm / 1 stressed, per day
    market_return: np.ndarray  # per minute, intrabar
    market_gap: np.ndarray  # per day (0 on the first day)
    params: MarketParams = field(repr=False)


def _market(start: str | date, n_days: int, seed: int, params: MarketParams) -> _Market:
    cal = trading_calendar(start, n_days)
    minutes = cal["minutes"].to_numpy()
    day = np.repeat(np.arange(n_days), minutes)
    minute = np.arange(len(day)) - np.repeat(np.cumsum(minutes) - minutes, minutes)
    opens = cal["date"].cast(pl.Datetime("us")).to_numpy() + np.timedelta64(9 * 60 + 30, "m")
    ts = opens[day] + minute.astype("timedelta64[m]")
    x = minute / (MINUTES_FULL_DAY - 1)
    shape = (0.75 + 1.2 * (x - 0.45) ** 2) / 0.85

    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    regime = np.zeros(n_days, dtype=np.int64)
    stay = np.asarray(params.regime_stay)
    for d in range(1, n_days):
        prev = regime[d - 1]
        regime[d] = prev if rng.random() < stay[prev] else 1 - prev
    vol = np.asarray(params.market_vol)[regime] / math.sqrt(_MINUTES_PER_YEAR)
    market_return = vol[day] * shape * rng.standard_normal(len(day))
    market_gap = np.asarray(params.market_vol)[regime] / math.sqrt(252) * 0.5 * rng.standard_normal(n_days)
    market_gap[0] = 0.0
    first_bar = (minute == 0) & (day > 0)
    return _Market(cal, ts, day, minute, first_bar, shape, regime, market_return, market_gap, params)


def symbol_names(n_symbols: int) -> list[str]:
    """``SYN000``, ``SYN001``, ...: names that say the data are synthetic."""
    width = max(3, len(str(n_symbols - 1)))
    return [f"SYN{i:0{width}d}" for i in range(n_symbols)]


def _symbol_rng(seed: int, i: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, i)))


def _events(rng: np.random.Generator, market: _Market, params: MarketParams) -> list[tuple[str, int, int, float]]:
    """(kind, day, start minute, log move) of the crash and spike events of one symbol."""
    out = []
    minutes = market.calendar["minutes"].to_numpy()
    for d, n_min in enumerate(minutes):
        if rng.random() < params.crash_rate:
            depth = rng.uniform(0.12, 0.20)
            out.append(("crash", d, int(rng.integers(30, n_min - 90)), math.log(1 - depth)))
        elif rng.random() < params.spike_rate:  # at most one event a day
            out.append(("spike", d, int(rng.integers(30, n_min - 40)), float(rng.choice([-1.0, 1.0]))))
    return out


def _symbol_frame(i: int, name: str, seed: int, market: _Market) -> pl.DataFrame:
    """All bars of symbol ``i``: the generative model of the module docstring."""
    p = market.params
    rng = _symbol_rng(seed, i)
    events = _events(rng, market, p)
    n = len(market.day)
    regime = market.regime[market.day]
    tier = 1 if i % 2 == 0 else 2
    beta = rng.uniform(*p.beta)
    bar_vol = rng.uniform(*p.idio_vol) / math.sqrt(_MINUTES_PER_YEAR) * (1 + 0.8 * regime) * market.shape
    price0 = math.exp(rng.uniform(math.log(p.price[0]), math.log(p.price[1])))
    half_spread = rng.uniform(*p.spread_bps) * 1e-4 * (1 + regime) * market.shape
    depth_lots, volume_level = rng.lognormal(2.5, 0.5), rng.lognormal(8.5, 0.8)
    trade_size = rng.uniform(80, 300)

    imbalance = np.tanh(rng.normal(0.0, 0.6, n))
    intrabar = beta * market.market_return + bar_vol * rng.standard_normal(n)
    intrabar[1:] += p.imbalance_signal * bar_vol[1:] * imbalance[:-1]
    jumps = rng.random(n) < p.jump_rate / MINUTES_FULL_DAY
    intrabar[jumps] += rng.normal(0.0, p.jump_size, jumps.sum())
    starts = np.r_[0, np.flatnonzero(np.diff(market.day)) + 1]
    for kind, d, m, move in events:
        first = starts[d] + m
        if kind == "crash":
            length = int(rng.integers(20, 61))
            intrabar[first : first + length] += move / length
        else:
            band = (0.05 if tier == 1 else 0.10) * 1.6
            intrabar[first : first + 2] += move * band / 2
            intrabar[first + 2 : first + 12] -= move * band * 0.4 / 10
    gap = np.zeros(n)
    gap[market.first_bar] = beta * market.market_gap[1:] + rng.normal(0.0, p.gap_vol, market.first_bar.sum())

    log_end = math.log(price0) + np.cumsum(gap + intrabar)
    mid_end, mid_start = np.exp(log_end), np.exp(log_end - intrabar)
    bid = np.floor(mid_end * (1 - half_spread) * 100) / 100
    ask = np.maximum(np.ceil(mid_end * (1 + half_spread) * 100) / 100, bid + 0.01)
    buy_last = rng.random(n) < np.where(intrabar > 0, 0.7, 0.3)
    close = np.where(buy_last, ask, bid)
    open_ = mid_start * (1 + half_spread * rng.choice([-1.0, 1.0], n))
    wick = 0.5 * bar_vol * np.abs(rng.standard_normal((2, n)))
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])

    activity = market.shape**2 * (1 + 0.5 * np.abs(intrabar) / bar_vol)
    volume = np.maximum(np.round(volume_level * activity * rng.lognormal(0.0, 0.4, n)), 100.0)
    trades = np.maximum(rng.poisson(volume / trade_size), 1)
    depth = depth_lots * rng.lognormal(0.0, 0.3, n)
    bid_size = np.maximum(np.round(depth * (1 + imbalance) / 2), 1) * 100
    ask_size = np.maximum(np.round(depth * (1 - imbalance) / 2), 1) * 100
    return pl.DataFrame({
        "ts": market.ts, "symbol": name, "open": open_, "high": high, "low": low, "close": close,
        "volume": volume, "trades": trades, "bid": bid, "ask": ask, "bid_size": bid_size,
        "ask_size": ask_size, "luld_tier": tier,
    }, schema=INTRADAY_BAR_SCHEMA)


def _checked(n_symbols: int, n_days: int, seed: int) -> None:
    positive_int(n_symbols, "n_symbols")
    positive_int(n_days, "n_days")
    check_value("seed", seed, NonNegativeInt)


# ---------------------------------------------------------------- entry points


def generate_bars(
    n_symbols: int = 8,
    start: str | date = "2024-01-02",
    n_days: int = 20,
    seed: int = 0,
    params: MarketParams | None = None,
) -> pl.LazyFrame:
    """1-minute SYNTHETIC bars with quotes, as a lazy scan that generates one symbol at a time.

    Nothing is computed until the frame is collected or sunk; a streaming
    sink (``sink_parquet``) keeps only one symbol in memory.
    """
    _checked(n_symbols, n_days, seed)
    params = params or MarketParams()
    names = symbol_names(n_symbols)
    _parse_start(start)

    def source(with_columns: list[str] | None, predicate: pl.Expr | None, n_rows: int | None,
               batch_size: int | None) -> Iterator[pl.DataFrame]:
        market = _market(start, n_days, seed, params)
        left = n_rows
        for i, name in enumerate(names):
            if left is not None and left <= 0:
                return
            frame = _symbol_frame(i, name, seed, market)
            if predicate is not None:
                frame = frame.filter(predicate)
            if with_columns is not None:
                frame = frame.select(with_columns)
            if left is not None:
                frame = frame.head(left)
                left -= frame.height
            yield frame

    return register_io_source(source, schema=INTRADAY_BAR_SCHEMA, is_pure=True, explain_name="synthetic_bars",
                              explain_detail=f"{n_symbols} symbols x {n_days} days from {start}, seed {seed}")


def generate_events(
    n_symbols: int = 8, start: str | date = "2024-01-02", n_days: int = 20, seed: int = 0,
    params: MarketParams | None = None,
) -> pl.DataFrame:
    """The crash and spike events ``generate_bars`` injects: ``symbol, date, kind, ts, move``.

    ``move`` is the log decline of a crash (< ln 0.88) or the sign of a spike.
    Cheap: draws only the events, not the bars.
    """
    _checked(n_symbols, n_days, seed)
    params = params or MarketParams()
    market = _market(start, n_days, seed, params)
    dates = market.calendar["date"].to_list()
    rows = []
    for i, name in enumerate(symbol_names(n_symbols)):
        for kind, d, m, move in _events(_symbol_rng(seed, i), market, params):
            rows.append((name, dates[d], kind, datetime.combine(dates[d], datetime.min.time())
                         + timedelta(minutes=9 * 60 + 30 + m), move))
    return pl.DataFrame(rows, schema={"symbol": pl.String, "date": pl.Date, "kind": pl.String,
                                      "ts": pl.Datetime("us"), "move": pl.Float64}, orient="row")


def write_bars(
    path: str | Path, n_symbols: int = 8, start: str | date = "2024-01-02", n_days: int = 20,
    seed: int = 0, params: MarketParams | None = None,
) -> pl.LazyFrame:
    """Write SYNTHETIC bars as ``path/symbol=<name>/bars.parquet`` and return a scan of them.

    One symbol is in memory at a time. The files keep every column, so the
    tree reads back with or without hive partitioning; row groups hold a
    week of bars, so scans filtered by time read little more than they need.
    """
    _checked(n_symbols, n_days, seed)
    params = params or MarketParams()
    root = Path(path)
    market = _market(start, n_days, seed, params)
    for i, name in enumerate(symbol_names(n_symbols)):
        folder = root / f"symbol={name}"
        folder.mkdir(parents=True, exist_ok=True)
        # week-sized row groups let a scan filtered on ts skip the rest of the year
        _symbol_frame(i, name, seed, market).write_parquet(folder / "bars.parquet",
                                                           row_group_size=5 * MINUTES_FULL_DAY)
    return pl.scan_parquet(root / "**" / "*.parquet", hive_partitioning=False)


# ---------------------------------------------------------------- options


def _third_fridays_after(day: date, count: int) -> list[date]:
    """The next ``count`` monthly expiries (third Fridays) at least a week after ``day``."""
    out, year, month = [], day.year, day.month
    while len(out) < count:
        friday = _nth_weekday(year, month, 4, 3)
        if friday >= day + timedelta(days=7):
            out.append(friday)
        year, month = year + month // 12, month % 12 + 1
    return out


def svi_surface(
    bars: pl.DataFrame | pl.LazyFrame, seed: int = 0, n_expiries: int = 4, rate: float = 0.04,
    long_run_vol: float = 0.30,
) -> pl.DataFrame:
    """True raw SVI parameters per (date, symbol, expiry) of the SYNTHETIC option market.

    Each day's surface is an SSVI surface (Gatheral & Jacquier 2014, eq. 4.1)
    ``w(k, theta) = theta/2 (1 + rho phi k + sqrt((phi k + rho)^2 + 1 - rho^2))``
    with the power-law ``phi = eta / sqrt(theta (1 + theta))`` (gamma = 1/2)
    and ``eta (1 + |rho|) <= 2``, which is free of butterfly and calendar
    arbitrage (their Corollary 4.1 and Theorem 4.2) as long as the ATM total
    variance ``theta`` rises with maturity. ``theta`` follows a mean-reverting
    term structure from the day's realized variance (times a 1.1 risk premium)
    to ``long_run_vol``. Each SSVI slice is a raw SVI slice with
    ``a = theta (1 - rho^2) / 2, b = theta phi / 2, m = -rho / phi,
    sigma = sqrt(1 - rho^2) / phi`` (their Lemma 3.2).

    On daily bars (one bar per session, close-only data such as the bundled
    indices) the day's realized variance is the squared close-to-close log
    return, annualised and smoothed over a 20-day span instead of 5, so the
    same surface can be laid over a real underlying.

    Columns: ``date, symbol, expiry, tau, underlying, rate, forward, a, b, rho, m, sigma``.
    """
    positive_int(n_expiries, "n_expiries")
    frame = bars.lazy()
    intraday = frame.group_by("symbol", pl.col("ts").dt.date()).len().select(pl.col("len").max()).collect().item() > 1
    price = (pl.col("bid") + pl.col("ask")) / 2 if intraday else pl.col("close")
    within = ("symbol", pl.col("ts").dt.date()) if intraday else ("symbol",)
    daily = (
        frame.sort("symbol", "ts")
        .select("ts", "symbol", "close", mid=price)
        .with_columns(r=pl.col("mid").log().diff().over(*within))
        .group_by("symbol", date=pl.col("ts").dt.date())
        .agg(underlying=pl.col("close").last(), rv=(pl.col("r") ** 2).sum() * 252)
        .sort("symbol", "date")
        .with_columns(v0=(1.1**2) * pl.col("rv").ewm_mean(span=5 if intraday else 20).over("symbol"))
        .collect()
    )
    rows = []
    for (symbol,), one in daily.group_by("symbol", maintain_order=True):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2, zlib.crc32(symbol.encode()))))
        rho = rng.uniform(-0.7, -0.3)
        eta = rng.uniform(1.2, 1.9) / (1 + abs(rho))
        for day, spot, v0 in one.select("date", "underlying", "v0").iter_rows():
            for expiry in _third_fridays_after(day, n_expiries):
                tau = (expiry - day).days / 365.0
                kappa, v_long = 4.0, long_run_vol**2
                theta = v_long * tau + (v0 - v_long) * (1 - math.exp(-kappa * tau)) / kappa
                phi = eta / math.sqrt(theta * (1 + theta))
                rows.append((day, symbol, expiry, tau, spot, rate, spot * math.exp(rate * tau),
                             theta * (1 - rho**2) / 2, theta * phi / 2, rho, -rho / phi,
                             math.sqrt(1 - rho**2) / phi))
    return pl.DataFrame(rows, orient="row", schema={
        "date": pl.Date, "symbol": pl.String, "expiry": pl.Date, "tau": pl.Float64, "underlying": pl.Float64,
        "rate": pl.Float64, "forward": pl.Float64, "a": pl.Float64, "b": pl.Float64, "rho": pl.Float64,
        "m": pl.Float64, "sigma": pl.Float64})


def generate_option_chain(
    bars: pl.DataFrame | pl.LazyFrame, seed: int = 0, n_expiries: int = 4, n_strikes: int = 11,
    rate: float = 0.04,
) -> pl.DataFrame:
    """SYNTHETIC end-of-day option chain, one row per (date, symbol, expiry, strike, right).

    Strikes span +-2.5 ATM standard deviations of log-moneyness around the
    forward (cent-rounded); ``iv`` is read off the true surface of
    :func:`svi_surface` at the rounded strike and ``price`` is the BSM value
    (no dividends) at that iv, so prices carry no static arbitrage.
    Columns: ``date, symbol, expiry, tau, strike, right, underlying, rate, iv, price``.
    """
    positive_int(n_strikes, "n_strikes")
    surface = svi_surface(bars, seed=seed, n_expiries=n_expiries, rate=rate)
    grid = pl.DataFrame({"z": np.linspace(-2.5, 2.5, n_strikes)})
    theta = pl.col("a") + pl.col("b") * (pl.col("rho") * -pl.col("m") + (pl.col("m") ** 2 + pl.col("sigma") ** 2)
                                         .sqrt())
    chain = (
        surface.join(grid, how="cross")
        .with_columns(strike=(pl.col("forward") * (pl.col("z") * theta.sqrt()).exp()).round(2))
        .filter(pl.col("strike") > 0)  # deep wings of a very volatile day round to zero
        .unique(["date", "symbol", "expiry", "strike"], keep="first", maintain_order=True)
        .with_columns(k=(pl.col("strike") / pl.col("forward")).log())
        .with_columns(w=pl.col("a") + pl.col("b") * (pl.col("rho") * (pl.col("k") - pl.col("m"))
                                                    + ((pl.col("k") - pl.col("m")) ** 2 + pl.col("sigma") ** 2)
                                                    .sqrt()))
        .with_columns(iv=(pl.col("w") / pl.col("tau")).sqrt())
        .join(pl.DataFrame({"right": ["C", "P"]}), how="cross")
    )
    price = bsm_price(chain["underlying"].to_numpy(), chain["strike"].to_numpy(), chain["tau"].to_numpy(),
                      chain["rate"].to_numpy(), chain["iv"].to_numpy(), chain["right"].to_numpy() == "C")
    return (chain.with_columns(price=pl.Series(price))
            .select("date", "symbol", "expiry", "tau", "strike", "right", "underlying", "rate", "iv", "price")
            .sort("date", "symbol", "expiry", "strike", "right"))
