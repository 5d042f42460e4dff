"""The books of the dual-book portfolio, each a daily net return stream (a fraction of its capital) from its replay.

- ``hrm``: the model's signals as a daily book. On daily data it is the
  close-to-close replay itself; on intraday data each symbol's last decision
  of a session is held from that session's close to the next one's
  (``SignalBacktest``, proportional costs), so the same signals also make a
  daily book beside the intraday one.
- ``book_b``: the intraday equity book, the strict simulator's replay of the
  signals (Rule 201, LULD, impact and every cost).
- ``book_a``: the delta-hedged options book on the same market and days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

import numpy as np
import polars as pl
from omegaconf import DictConfig

from dualhrq.config import FINITE, POSITIVE, PositiveInt, between, build, check_value, located
from dualhrq.errors import ConfigError
from dualhrq.evaluation.portfolio import FACTOR_KINDS, Books
from dualhrq.market.backtest import BacktestResult, SignalBacktest
from dualhrq.market.engine import marks
from dualhrq.portfolio.attribution import implementation_shortfall, symbol_pnl
from dualhrq.portfolio.book_a import OptionsBook
from dualhrq.portfolio.drill import crash_drill
from dualhrq.portfolio.metrics import book_metrics
from dualhrq.portfolio.strict_sim import StrictSimBacktest, StrictSimResult
from dualhrq.risk.stress import scenario_of
from dualhrq.risk.var import Level, Method, min_observations
from dualhrq.validation.gates import gates_from_config

BOOKS = ("hrm", "book_a", "book_b")


def available_books(strict: bool, options: bool) -> dict[str, str]:
    """Each book this replay can make, or why it cannot (book -> "" or the reason and the fix)."""
    return {
        "hrm": "",
        "book_b": "" if strict else "needs intraday bars with quotes replayed by the strict simulator "
                                    "(backtest=strict_sim on a run trained on intraday data)",
        "book_a": "" if options else "needs the option chain of the market (options.enabled=true)",
    }


def check_books(books: list[str], strict: bool, options: bool) -> None:
    """Refuse an unknown or unavailable book before anything is replayed."""
    unknown = [b for b in books if b not in BOOKS]
    if unknown or len(set(books)) != len(books) or not books:
        raise ConfigError(f"must name distinct books from {list(BOOKS)}, got {books}.", field="portfolio.books")
    why = {b: r for b, r in available_books(strict, options).items() if b in books and r}
    if why:
        book, reason = next(iter(why.items()))
        raise ConfigError(f"{book} {reason}; or drop it from the list.", field="portfolio.books")


def session_closes(bars: pl.DataFrame) -> pl.DataFrame:
    """Each symbol's last close of every session: ``ts`` (the session's date at midnight), ``symbol``, ``close``."""
    return (bars.sort("symbol", "ts")
            .group_by("symbol", pl.col("ts").dt.date().cast(pl.Datetime("us")).alias("day"), maintain_order=True)
            .agg(pl.col("close").last()).rename({"day": "ts"}))


def daily_decisions(predictions: pl.DataFrame, closes: pl.DataFrame) -> pl.DataFrame:
    """The last decision of each symbol and session, labelled with the next session's close-to-close return."""
    forward = closes.sort("symbol", "ts").with_columns(
        next_return=pl.col("close").shift(-1).over("symbol") / pl.col("close") - 1.0)
    last = (predictions.sort("symbol", "ts")
            .group_by("symbol", pl.col("ts").dt.date().cast(pl.Datetime("us")).alias("day"), maintain_order=True)
            .agg(pl.col("signal").last()).rename({"day": "ts"}))
    return last.join(forward.select("ts", "symbol", "next_return"), on=["ts", "symbol"]).drop_nulls("next_return")


def realized_on(returns: pl.DataFrame, closes: pl.DataFrame) -> pl.DataFrame:
    """A close-to-close replay's rows, labelled by the decision's session, moved to the next session: the day the
    return is earned, as the other books and the assets label theirs (a decision on the last session, whose
    return is not known, is dropped)."""
    sessions = closes["ts"].unique().sort()
    following = pl.DataFrame({"ts": sessions[:-1], "earned": sessions[1:]})
    return (returns.with_columns(pl.col("ts").cast(pl.Datetime("us"))).join(following, on="ts")
            .drop("ts").rename({"earned": "ts"}).select("ts", *[c for c in returns.columns if c != "ts"]))


def hrm_daily(predictions: pl.DataFrame, closes: pl.DataFrame, cost_bps: float,
              periods_per_year: int = 252) -> BacktestResult:
    """The signals' daily book: ``daily_decisions`` replayed close to close."""
    return SignalBacktest(cost_bps=cost_bps, periods_per_year=periods_per_year).run(
        daily_decisions(predictions, closes))


def market_bars(cfg: DictConfig, sim: object, predictions: pl.DataFrame) -> pl.DataFrame:
    """The replayed market's bars of the predicted symbols, from two weeks before the first decision on: the
    strict simulator's intraday market, or the data config's (daily) bars."""
    symbols = predictions["symbol"].unique().sort().to_list()
    first, last = predictions["ts"].min().date() - timedelta(days=14), predictions["ts"].max().date()
    if isinstance(sim, StrictSimBacktest):
        return sim.market_bars(symbols, first, last)
    with located(cfg.data.source):
        bars = build(cfg.data.source)()
    bars = bars.collect() if isinstance(bars, pl.LazyFrame) else bars
    return bars.filter(pl.col("symbol").is_in(symbols) & pl.col("ts").dt.date().is_between(first, last))


@dataclass(frozen=True)
class OptionsRun:
    """Book A's replay: the attribution frame, its metrics and summary lines, and what made it (for holdings)."""

    attribution: pl.DataFrame
    metrics: dict[str, float]
    lines: list[str]
    book: OptionsBook
    chain: pl.DataFrame
    surface: pl.DataFrame | None
    rejections: pl.DataFrame  # rebalances the Greek limits refused: date, symbol, limit, value, bound


def options_book(cfg: DictConfig, bars: pl.DataFrame, predictions: pl.DataFrame,
                 periods_per_year: int) -> OptionsRun:
    """Book A on the option chain of the replayed symbols and days: attribution, metrics, summary lines (with
    desk limits, ``book_a/pretrade_rejections`` and one count per limit: the rebalances they refused)."""
    symbols = predictions["symbol"].unique().sort().to_list()
    first, last = predictions["ts"].min().date(), predictions["ts"].max().date()
    surface = None
    if cfg.options.chain_path is not None:
        chain = pl.read_parquet(cfg.options.chain_path).filter(
            pl.col("symbol").is_in(symbols) & pl.col("date").is_between(first, last))
    else:
        days = bars.filter(pl.col("ts").dt.date().is_between(first, last))
        with located(cfg.options.chain):
            chain = build(cfg.options.chain)(days)
        with located(cfg.options.surface):
            surface = build(cfg.options.surface)(days) if cfg.options.surface is not None else None
    book: OptionsBook = build(cfg.options.book)
    checked = book.run_checked(chain, surface)
    out = checked.attribution
    daily = out.group_by("date").agg(pl.col("net").sum()).sort("date")
    net = daily["net"].to_numpy() / book.capital
    terms = out.select(pl.col("^(delta|gamma|vega|theta)_pnl$").abs()).sum_horizontal()
    metrics = {f"book_a/{k}": v for k, v in book_metrics(net, 0.0, periods_per_year).items() if k != "turnover"}
    metrics.update({f"book_a/{k}_pnl": float(out[f"{k}_pnl"].sum()) for k in ("delta", "gamma", "vega", "theta")})
    metrics["book_a/residual_pnl"] = float(out["residual"].sum())
    metrics["book_a/residual_share"] = float(out["residual"].abs().sum() / terms.sum())
    metrics["book_a/max_abs_net_delta"] = float(out["net_delta"].abs().max())
    lines = [f"Book A ({book.side} {book.structure}s, {out['symbol'].n_unique()} symbols, {daily.height} days): "
             f"P&L {out['net'].sum():,.0f} = delta {metrics['book_a/delta_pnl']:,.0f} + gamma "
             f"{metrics['book_a/gamma_pnl']:,.0f} + vega {metrics['book_a/vega_pnl']:,.0f} + theta "
             f"{metrics['book_a/theta_pnl']:,.0f} + residual {metrics['book_a/residual_pnl']:,.0f} - costs "
             f"{out['costs'].sum():,.0f}; |residual| is {metrics['book_a/residual_share']:.1%} of |attributed|."]
    if book.greek_limits is not None:
        metrics["book_a/pretrade_rejections"] = float(checked.rejections.height)
        metrics.update({f"book_a/pretrade_{name}": float(n) for name, n in checked.counts.items()})
        lines.append(f"Book A pre-trade Greek limits refused {checked.rejections.height} rebalances ("
                     + ", ".join(f"{name} {n}" for name, n in checked.counts.items()) + ").")
    return OptionsRun(out, metrics, lines, book, chain, surface, checked.rejections)


def chosen_assets(cfg: DictConfig, symbols: list[str]) -> list[str]:
    """``portfolio.assets``: none, ``all`` the traded symbols, or a list of them (refused when one is not traded)."""
    assets = cfg.portfolio.get("assets")
    if assets is None:
        return []
    if assets == "all":
        return sorted(symbols)
    unknown = [a for a in assets if a not in symbols]
    if unknown or isinstance(assets, str):
        raise ConfigError(f"{unknown or assets} are not among the replayed symbols {sorted(symbols)}. Fix: name "
                          "traded symbols, `all`, or null.", field="portfolio.assets")
    clash = [a for a in assets if a in BOOKS]
    if clash:
        raise ConfigError(f"{clash} clash with the books' names.", field="portfolio.assets")
    return list(assets)


def check_portfolio(cfg: DictConfig, strict: bool, days: int, symbols: list[str]) -> None:
    """Every setting of ``portfolio`` and ``risk`` that can be judged before the replay: the books, the
    integrator and its budgets (one entry per book), the regime, the correlation monitor, the gates, the VaR
    levels and methods against the ``days`` the signals span, the assets among the traded ``symbols``, the
    scenarios."""
    portfolio, risk = cfg.portfolio, cfg.risk
    books = list(portfolio.books)
    check_books(books, strict, bool(cfg.options.enabled))
    check_value("portfolio.capital", float(portfolio.capital), Annotated[float, FINITE, POSITIVE])
    integrator = build(portfolio.integrator)
    with located("portfolio.integrator"):
        integrator.check_sizes(len(books) + len(chosen_assets(cfg, symbols)))
    if portfolio.get("regime") is not None:
        build(portfolio.regime)
    with located("portfolio.gates"):
        gates_from_config(portfolio.gates, "portfolio.gates")
    build(risk.correlation)
    for name in ("levels", "horizons", "methods"):
        if not list(risk[name]):
            raise ConfigError(f"is empty. Fix: list one or more {name}.", field=f"risk.{name}")
    for level in [*risk.levels, risk.backtest.level]:
        check_value("risk.levels", float(level), Level)
    for horizon in risk.horizons:
        check_value("risk.horizons", horizon, PositiveInt)
    for method in [*risk.methods, risk.method, risk.backtest.method]:
        check_value("risk.methods", method, Method)
    for method in risk.methods:
        for level in risk.levels:
            need = min_observations(method, float(level), max(risk.horizons))
            if days < need:
                raise ConfigError(f"method {method!r} at level {level} and horizon {max(risk.horizons)} needs "
                                  f"{need} days of returns; the signals span {days}. Fix: drop the method, the level "
                                  "or the horizon from risk.methods / risk.levels / risk.horizons, or replay a "
                                  "longer run.", field="risk.methods")
    bt = risk.backtest
    with located("risk.backtest"):
        need = min_observations(str(bt.method), float(bt.level))
        if int(bt.window) < need:
            raise ConfigError(f"must be >= {need} for method {bt.method!r} at level {bt.level}, got {bt.window}.",
                              field="window")
    if risk.method not in risk.methods:
        raise ConfigError(f"{risk.method!r} is not among risk.methods {list(risk.methods)}. Fix: add it there.",
                          field="risk.method")
    for level in risk.alerts.drawdown:
        check_value("risk.alerts.drawdown", float(level), Annotated[float, between(0, 1, lo_open=True)])
    if risk.factors.kind not in FACTOR_KINDS:
        raise ConfigError(f"must be one of {list(FACTOR_KINDS)}, got {risk.factors.kind!r}.", field="risk.factors.kind")
    with located("risk.stress"):
        for name in risk.stress.scenarios:
            scenario_of(name)


def replayed_books(cfg: DictConfig, sim: object, result: BacktestResult, predictions: pl.DataFrame,
                   bars: pl.DataFrame, options: OptionsRun | None, metrics: dict[str, float]) -> Books:
    """The books ``portfolio.books`` names and the ``portfolio.assets``, from this replay on the market's
    ``bars`` (:func:`market_bars`): daily net returns and what each holds at the last close (fractions of its
    capital per symbol; Book A's legs and hedge)."""
    wanted = list(cfg.portfolio.books)
    strict = isinstance(result, StrictSimResult)
    closes = session_closes(bars) if strict else bars.select("ts", "symbol", "close")
    streams: dict[str, pl.DataFrame] = {}
    exposures: dict[str, dict[str, float]] = {}
    last = predictions.sort("ts").group_by("symbol").agg(pl.col("signal").last())
    n = max(last.height, 1)
    if "hrm" in wanted:  # the close-to-close book: each symbol's signal, equally weighted
        hrm = hrm_daily(predictions, closes, float(cfg.backtest.get("cost_bps", 1.0))) if strict else result
        streams["hrm"] = realized_on(hrm.returns, closes)
        exposures["hrm"] = {s: float(np.clip(v, -1, 1)) / n for s, v in last.iter_rows()}
    post_trade: dict[str, float] = {}
    files: dict[str, pl.DataFrame] = {}
    if "book_b" in wanted:
        rec = result.replay
        value = rec.position[-1] * marks(rec.grid)[-1] / sim.capital
        streams["book_b"] = result.returns
        exposures["book_b"] = dict(zip(rec.grid.symbols, value.tolist(), strict=True))
        post_trade = {f"execution/{k}": v for k, v in implementation_shortfall(rec).items()}
        files["book_b_symbol_pnl.csv"] = symbol_pnl(rec)
    legs, hedge, options_capital = None, {}, 1.0
    if "book_a" in wanted and options is not None:
        daily = options.attribution.group_by("date").agg(pl.col("net").sum()).sort("date")
        streams["book_a"] = daily.select(pl.col("date").cast(pl.Datetime("us")).alias("ts"),
                                         (pl.col("net") / options.book.capital).alias("net"))
        legs, hedge = options.book.holdings(options.chain, options.surface)
        options_capital = options.book.capital
    for asset in chosen_assets(cfg, predictions["symbol"].unique().to_list()):  # held long, close to close
        one = closes.filter(pl.col("symbol") == asset).sort("ts")
        streams[asset] = one.select("ts", net=pl.col("close").pct_change().fill_null(0.0))
        exposures[asset] = {asset: 1.0}
        wanted.append(asset)
    vix = None
    if cfg.data.get("vix") is not None:
        with located(cfg.data.vix):
            vix = build(cfg.data.vix)()
    return Books(streams={b: streams[b] for b in wanted}, exposures=exposures, closes=closes, legs=legs,
                 hedge=hedge, options_capital=options_capital, vix=vix, synthetic=bool(cfg.data.get("synthetic")),
                 metrics={**metrics, **post_trade, **crash_drill_metrics(cfg, sim)}, files=files)


def crash_drill_metrics(cfg: DictConfig, sim: object) -> dict[str, float]:
    """``killswitch/drill_*``: the strict simulator's kill switch (or the strict_sim config's, for a daily replay)
    against a planted crash."""
    switch = getattr(sim, "kill_switch", None)
    costs, execution = getattr(sim, "costs", None), getattr(sim, "execution", None)
    if switch is None:
        switch = build(cfg.portfolio.kill_switch) if cfg.portfolio.get("kill_switch") is not None else None
    if switch is None:
        return {}
    return {f"killswitch/{k}": v for k, v in crash_drill(switch, costs=costs, execution=execution).items()}
