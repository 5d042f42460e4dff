"""``backtest=strict_sim``: replay model signals on intraday bars under Rule 201 and LULD, with costs.

The training job calls ``run(predictions)`` on each fold's out-of-sample
predictions and on each CPCV path, exactly as it calls the close-to-close
``SignalBacktest``; ``python -m dualhrq.backtest`` calls the same method on a
finished run's predictions. Predictions are decisions on bars of the
configured intraday market (``market``: the data module's source of bars
with quotes). Book B sizes them, the engine trades them under the rules and
the participation cap (``execution``), the independent audit re-checks
every fill, and the result carries daily returns (net of every cost, as
fractions of ``capital``), the per-step records, the daily violation report
and the book's metrics. With ``limits`` every new decision of the book is
checked before it reaches the engine (a rejected one leaves the previous
target in force); with ``kill_switch`` the replay halts and flattens the
book when the day's loss or the drawdown reaches its limit. The result
then also carries the rejections, the trips and the drawdown alerts. The replay starts two sessions before the first
decision: the first gives the second its previous close, so a Rule 201
restriction triggered the day before the first decision is in force on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, time, timedelta
from typing import Annotated, Any

import numpy as np
import polars as pl

from dualhrq.config import FINITE, POSITIVE, check_value, invalid
from dualhrq.errors import DataError
from dualhrq.market.audit import daily_report
from dualhrq.market.backtest import BacktestResult
from dualhrq.market.costs import CostModel
from dualhrq.market.engine import Execution, Replay
from dualhrq.market.engine import replay as trade
from dualhrq.market.grid import build_grid
from dualhrq.portfolio.book_b import EquityBook
from dualhrq.portfolio.metrics import book_metrics
from dualhrq.risk.killswitch import KillSwitch, KillSwitchGuard, alerts_frame, trips_frame
from dualhrq.risk.limits import LIMITS, PreTradeLimits, PreTradeResult

Market = pl.DataFrame | pl.LazyFrame | Callable[[], pl.DataFrame | pl.LazyFrame]
_LOADED: dict[str, pl.LazyFrame] = {}
# the risk counts ``describe`` adds to the daily report's: rejected decisions (all, per limit), kill-switch trips,
# the most bars a trip took to a flat book, drawdown alerts
RISK_COUNTS = ("pretrade_rejections", *(f"pretrade_{name}" for name in LIMITS), "killswitch_trips",
               "killswitch_bars_to_flat", "killswitch_alerts")


@dataclass(frozen=True)
class StrictSimResult(BacktestResult):
    """``BacktestResult`` (daily ``returns``: ts, gross, cost, net) plus the replay's records and reports."""

    replay: Replay = field(repr=False, default=None)  # type: ignore[assignment]
    report: pl.DataFrame = field(repr=False, default=None)  # type: ignore[assignment]
    metrics: dict[str, float] = field(default_factory=dict)
    rejections: pl.DataFrame = field(repr=False, default=None)  # type: ignore[assignment]  # ts, symbol, limit, ...
    trips: pl.DataFrame = field(repr=False, default=None)  # type: ignore[assignment]  # ts, limit, loss, flat_ts, ...
    alerts: pl.DataFrame = field(repr=False, default=None)  # type: ignore[assignment]  # ts, level

    def details(self) -> dict[str, float]:
        """Sortino, hit rate, total return and the rule counts (fills, rejections by reason, violations)."""
        extra = {k: v for k, v in self.metrics.items() if k not in ("sharpe", "max_drawdown", "turnover")}
        return {**extra, **{k: float(v) for k, v in describe(self).items()}}


class StrictSimBacktest:
    """Book B through the rule engine and cost models on the configured intraday market."""

    def __init__(self, market: Market, book: EquityBook | None = None, costs: CostModel | None = None,
                 capital: float = 1_000_000.0, periods_per_year: int = 252,
                 execution: Execution | None = None, limits: PreTradeLimits | None = None,
                 kill_switch: KillSwitch | None = None) -> None:
        check_value("capital", capital, Annotated[float, FINITE, POSITIVE])
        if kill_switch is not None and kill_switch.capital is None:
            kill_switch = replace(kill_switch, capital=float(capital))
        elif kill_switch is not None and kill_switch.capital != capital:
            raise invalid("kill_switch.capital", kill_switch.capital, f"the backtest's capital ({capital}) or null",
                          "leave it unset: the kill switch measures losses against the backtest's capital")
        self.limits = limits
        self.kill_switch = kill_switch
        self.market = market
        self.book = book if book is not None else EquityBook()
        self.costs = costs if costs is not None else CostModel()
        self.execution = execution if execution is not None else Execution()
        self.capital = float(capital)
        self.periods_per_year = periods_per_year

    def _bars(self) -> pl.LazyFrame:
        if isinstance(self.market, pl.DataFrame):
            return self.market.lazy()
        if isinstance(self.market, pl.LazyFrame):
            return self.market
        key = repr(self.market)  # a Hydra partial: same config, same bars; load them once per process
        if key not in _LOADED:
            bars = self.market()
            _LOADED[key] = (bars.collect() if isinstance(bars, pl.LazyFrame) else bars).lazy()
        return _LOADED[key]

    def market_bars(self, symbols: list[str], first: date, last: date) -> pl.DataFrame:
        """The market's bars of ``symbols`` from ``first`` to ``last`` (inclusive dates)."""
        return (self._bars().filter(pl.col("symbol").is_in(symbols) & pl.col("ts").dt.date().is_between(first, last))
                .collect())

    def replay(self, predictions: pl.DataFrame) -> StrictSimResult:
        """Replay ``predictions`` (ts, symbol, signal[, t1]) and assemble the result."""
        missing = [c for c in ("ts", "symbol", "signal") if c not in predictions.columns]
        if missing:
            raise DataError(f"predictions lack columns {missing}; the strict simulator needs ts, symbol, signal.")
        if (predictions["ts"].dt.time() == time(0, 0)).all():
            raise DataError("predictions are daily (every ts at midnight); the strict simulator replays decisions "
                            "on intraday bars. Fix: train with data=synthetic_intraday (or intraday bars with "
                            "quotes), or use backtest=daily.")
        symbols = predictions["symbol"].unique().sort().to_list()
        first = predictions["ts"].min().date()
        last_col = "t1" if "t1" in predictions.columns else "ts"
        last = max(predictions[last_col].max(), predictions["ts"].max()).date()
        bars = self.market_bars(symbols, first - timedelta(days=14), last)
        present = set(bars["symbol"].unique().to_list())
        absent = [s for s in symbols if s not in present]
        if absent:
            raise DataError(f"predictions name symbols {absent[:5]} that the strict simulator's market has no "
                            f"intraday bars for between {first} and {last}. Fix: backtest=strict_sim replays "
                            "signals made on intraday bars with quotes (data=synthetic_intraday).")
        days = bars["ts"].dt.date().unique().sort()
        prior = days.filter(days < first)
        start = prior[-2:][0] if prior.len() else first  # two sessions: the day before gets its previous close
        grid = build_grid(bars.filter(pl.col("ts").dt.date() >= start), source="strict_sim market")
        target = self.book.targets(predictions, grid, self.capital)
        checked = None
        if self.limits is not None:
            checked = self.limits.check(target, grid.mid, grid.day, grid.volume, self.capital)
            target = checked.target
        guard = self.kill_switch.guard(grid.day) if self.kill_switch is not None else None
        rec = trade(grid, target, self.costs, self.execution, guard=guard)
        return self._result(rec, first, checked, guard)

    run = replay

    def _result(self, rec: Replay, first, checked: PreTradeResult | None,
                guard: KillSwitchGuard | None) -> StrictSimResult:
        grid = rec.grid
        steps = rec.per_step()
        active_day = np.zeros(len(grid.days), dtype=bool)
        np.logical_or.at(active_day, grid.day, (rec.target != 0).any(axis=1) | (rec.position != 0).any(axis=1))
        daily = (steps.with_columns(day=pl.Series(grid.day))
                 .group_by("day", maintain_order=True)
                 .agg(pl.col("pnl").sum(), pl.col("gross_pnl").sum(), pl.col("traded_value").sum()))
        keep = np.array([d >= first for d in grid.days]) & active_day
        daily = daily.filter(pl.Series(keep[daily["day"].to_numpy()]))
        returns = pl.DataFrame({
            "ts": pl.Series([grid.days[d] for d in daily["day"]], dtype=pl.Date).cast(pl.Datetime("us")),
            "gross": daily["gross_pnl"] / self.capital,
            "net": daily["pnl"] / self.capital,
        }).with_columns(cost=pl.col("gross") - pl.col("net")).select("ts", "gross", "cost", "net")
        net = returns["net"].to_numpy()
        turnover = float(daily["traded_value"].mean() / self.capital) if daily.height else 0.0
        metrics = book_metrics(net, turnover, self.periods_per_year) if net.size else {}
        checked = checked if checked is not None else PreTradeResult.unchecked(rec.target)
        return StrictSimResult(returns=returns, sharpe=metrics.get("sharpe", float("nan")),
                               max_drawdown=metrics.get("max_drawdown", float("nan")), turnover=turnover,
                               replay=rec, report=daily_report(rec).filter(pl.col("date") >= first),
                               metrics=metrics, rejections=checked.frame(grid.bar_ts, grid.symbols),
                               trips=trips_frame(guard.trips if guard else [], grid.bar_ts),
                               alerts=alerts_frame(guard.alerts if guard else [], grid.bar_ts))


def adversarial_signals(bars: pl.DataFrame) -> pl.DataFrame:
    """The rule-testing signal: short (-1) after every bar that closed lower, held one bar, on every symbol.

    It tries to short into every decline, exactly what Rule 201 restricts
    after a 10% drop and what LULD bands stop in a limit-down state.
    """
    falling = pl.col("close").diff().over("symbol") < 0
    return (bars.sort("symbol", "ts").select("ts", "symbol", signal=pl.when(falling).then(-1.0).otherwise(0.0))
            .with_columns(t1=pl.col("ts").shift(-1).over("symbol")).drop_nulls("t1"))


def describe(result: StrictSimResult) -> dict[str, Any]:
    """Counts for logs: the daily report's (fills, rejections by reason, violations) and the risk checks'
    (``RISK_COUNTS``; a trip whose book never got flat while halted counts the bars to the end of its halt)."""
    report = result.report
    counts = {c: int(report[c].sum()) for c in report.columns if c != "date"}
    counts["pretrade_rejections"] = result.rejections.height
    counts |= {f"pretrade_{name}": int((result.rejections["limit"] == name).sum()) for name in LIMITS}
    counts["killswitch_trips"] = result.trips.height
    to_flat = result.trips.select(pl.coalesce("bars_to_flat", "halted_bars"))
    counts["killswitch_bars_to_flat"] = int(to_flat.max().item() or 0)
    counts["killswitch_alerts"] = result.alerts.height
    return counts

