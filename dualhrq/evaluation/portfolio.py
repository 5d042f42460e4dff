"""The portfolio stage of a replay (``portfolio=dual_book``): the books as one portfolio under the risk layer.

The replay hands over each book's daily net returns (``Books.streams``) and
what each holds at the last close. This stage allocates between the books
point in time (``portfolio.integrator``; budgets switched by the market
regime, ``portfolio.regime``), then measures the combined book
(``risk``): VaR and CVaR by every method, the VaR backtest of point-in-time
forecasts (Kupiec, Christoffersen), drawdown alerts, factor risk, the
correlation regime between the books, the historical scenarios and
hypothetical shocks on the last close's positions (Book A fully revalued)
and Monte Carlo paths of a fitted GARCH. The portfolio gates read all of it
together with what the books' replays measured (kill switch, pre-trade
rejections). The result holds the metrics, files and report for the replay
to log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from omegaconf import DictConfig

from dualhrq.config import build, located
from dualhrq.errors import ConfigError
from dualhrq.portfolio.attribution import book_contributions
from dualhrq.portfolio.metrics import book_metrics
from dualhrq.primitives.tables import format_table
from dualhrq.report.html import table as html_table
from dualhrq.report.risk import write_risk_report
from dualhrq.risk.factors import FactorModel, daily_factors, monthly_french, pca_factors
from dualhrq.risk.stress import (
    correlation_shock,
    equity_shock,
    garch_scenarios,
    historical_stress,
    option_stress,
    scenario_moves,
    scenario_of,
)
from dualhrq.risk.var import risk_table, rolling_var
from dualhrq.risk.var_backtest import backtest_var
from dualhrq.validation.gates import evaluate_gates, gate_metrics, gate_rows, gates_from_config

log = logging.getLogger("dualhrq.backtest")
FACTOR_KINDS = ("auto", "daily", "pca", "none")
FRENCH_END_YEAR = 2018  # arch's Fama-French monthly factors end in 2018-11
# the hypothetical shocks: name, equity move, implied volatility multiple
SHOCKS = (("equity_down_20", -0.20, 1.0), ("vol_x2", 0.0, 2.0), ("equity_down_20_vol_x2", -0.20, 2.0))


@dataclass
class Books:
    """The books of one replay: daily net returns, positions at the last close (fractions of each book's
    capital, per symbol), Book A's legs and hedge, the traded market's daily closes, and the books' own
    metrics (kill switch, pre-trade, execution) for the gates."""

    streams: dict[str, pl.DataFrame]
    exposures: dict[str, dict[str, float]]
    closes: pl.DataFrame  # ts, symbol, close: each session's last close
    legs: pl.DataFrame | None = None
    hedge: dict[str, float] = field(default_factory=dict)
    options_capital: float = 1_000_000.0
    vix: pl.DataFrame | None = None
    synthetic: bool = False
    metrics: dict[str, float] = field(default_factory=dict)
    files: dict[str, pl.DataFrame] = field(default_factory=dict)


@dataclass
class PortfolioOutput:
    """What the replay logs: metrics, tags, summary lines, files (name -> frame) and the HTML report."""

    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    files: dict[str, pl.DataFrame] = field(default_factory=dict)
    report: Path | None = None


def book_frame(streams: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """``ts`` and one column of daily net returns per book, over the union of their days (0 where a book is
    flat that day)."""
    frame = None
    for name, returns in streams.items():
        one = returns.select(pl.col("ts").cast(pl.Datetime("us")), pl.col("net").alias(name))
        frame = one if frame is None else frame.join(one, on="ts", how="full", coalesce=True)
    assert frame is not None
    return frame.sort("ts").fill_null(0.0)


def market_returns(closes: pl.DataFrame) -> pl.DataFrame:
    """``ts, ret``: the equally weighted daily return of the traded symbols (the regime's market)."""
    return (closes.sort("symbol", "ts").with_columns(r=pl.col("close").pct_change().over("symbol"))
            .group_by("ts").agg(ret=pl.col("r").mean()).drop_nulls().sort("ts"))


def run_portfolio(portfolio: DictConfig, risk: DictConfig, books: Books, out_dir: Path) -> PortfolioOutput:
    """Allocate, measure, stress and gate (see the module docstring)."""
    out = PortfolioOutput()
    frame = book_frame(books.streams)
    names = [c for c in frame.columns if c != "ts"]
    regime = None
    if portfolio.get("regime") is not None:
        classifier = build(portfolio.regime)
        with located("portfolio.regime"):
            regime = classifier.classify(market_returns(books.closes), books.vix)
    integrator = build(portfolio.integrator)
    with located("portfolio.integrator"):
        result = integrator.run(frame, regime)
    net = result.returns["net"].to_numpy()
    capital = float(portfolio.capital)

    summary = []
    for name in [*names, "portfolio"]:
        r = net if name == "portfolio" else frame[name].to_numpy()
        figures = {k: v for k, v in book_metrics(r, 0.0).items() if k != "turnover"}
        out.metrics.update({f"portfolio/{k}" if name == "portfolio" else f"portfolio/{name}/{k}": v
                            for k, v in figures.items()})
        summary.append({"book": name, **{k: figures[k] for k in ("sharpe", "sortino", "max_drawdown",
                                                                 "total_return")}})
    out.metrics["portfolio/rebalances"] = float(result.rebalances.height)
    out.metrics["portfolio/rebalance_cost"] = float(result.returns["cost"].sum())
    out.metrics.update({f"attribution/{k}": v for k, v in book_contributions(result.weights, frame).items()})
    out.metrics.update({f"pretrade/{k.removeprefix('bt/pretrade_')}": v for k, v in books.metrics.items()
                        if k.startswith("bt/pretrade_")})
    out.metrics.update({f"killswitch/{k.removeprefix('bt/killswitch_')}": v for k, v in books.metrics.items()
                        if k.startswith("bt/killswitch_")})
    out.metrics.update({k: v for k, v in books.metrics.items() if not k.startswith("bt/")})

    var_rows, var_frame, backtest = value_at_risk(risk, result.returns, out)
    alerts(risk, result.returns, out)
    corr = None
    if len(names) > 1:
        monitor = build(risk.correlation)
        with located("risk.correlation"):
            corr = monitor.run(frame)
        shifts = corr["shift"].fill_null(False)
        out.metrics["risk/correlation_shifts"] = float((shifts & ~shifts.shift(1, fill_value=False)).sum())
    factor_rows = factor_risk(risk.factors, result.returns, books, out)
    weights = {n: float(result.weights[n][-1]) for n in names}
    stress_rows = stress_tests(risk.stress, books, weights, capital, frame, net, out)

    with located("portfolio.gates"):
        gates = gates_from_config(portfolio.gates, "portfolio.gates")
    results = evaluate_gates(gates, out.metrics)
    out.metrics.update(gate_metrics(results))
    gates_table = gate_rows(results)

    out.files = {**books.files, "portfolio_returns.parquet": result.returns,
                 "portfolio_weights.parquet": result.weights, "rebalances.parquet": result.rebalances,
                 "risk_contributions.parquet": result.risk_contributions,
                 "book_returns.parquet": frame, "var_backtest.parquet": var_frame,
                 "risk_table.csv": pl.DataFrame(var_rows), "stress.csv": pl.DataFrame(stress_rows),
                 "factor_risk.csv": pl.DataFrame(factor_rows)}
    intro = (f"Books: {', '.join(names)}; {result.rebalances.height} rebalances; VaR backtest ({backtest})."
             if backtest else f"Books: {', '.join(names)}; {result.rebalances.height} rebalances.")
    out.report = write_risk_report(
        out_dir, title="Portfolio and risk", intro=intro, summary=summary, weights=result.weights,
        contributions=result.risk_contributions.drop_nulls(), var=var_frame, var_level=float(risk.backtest.level),
        risk_rows=var_rows, stress_rows=stress_rows, correlation=corr,
        extra=[("Factor risk", html_table(factor_rows)), ("Gates", html_table(gates_table, status_column="status"))])
    out.lines = [format_table(summary, "Books alone and combined (daily net returns)"), "",
                 format_table(stress_rows, "Stress on the last close's positions (P&L as a fraction of capital)"),
                 "", format_table(gates_table, "Portfolio gates")]
    return out


def value_at_risk(risk: DictConfig, returns: pl.DataFrame, out: PortfolioOutput
                  ) -> tuple[list[dict[str, Any]], pl.DataFrame, str]:
    """The VaR/CVaR table of the combined book, its metrics, and the backtest of point-in-time forecasts."""
    net = returns["net"].to_numpy()
    with located("risk"):
        table = risk_table(net, levels=list(risk.levels), horizons=list(risk.horizons), methods=list(risk.methods),
                           seed=int(risk.seed), n_sims=int(risk.n_sims))
    for row in table.filter(pl.col("method") == risk.method).iter_rows(named=True):
        key = f"{round(row['level'] * 100)}" + ("" if row["horizon"] == 1 else f"_{row['horizon']}d")
        out.metrics[f"risk/var_{key}"], out.metrics[f"risk/cvar_{key}"] = row["var"], row["cvar"]
    bt_cfg = risk.backtest
    if net.size <= int(bt_cfg.window) + 1:
        log.warning("VaR backtest left out: %d days of portfolio returns, the window is %d", net.size, bt_cfg.window)
        return table.to_dicts(), pl.DataFrame(), ""
    with located("risk.backtest"):
        forecast = rolling_var(net, float(bt_cfg.level), str(bt_cfg.method), window=int(bt_cfg.window),
                               refit_every=int(bt_cfg.refit_every))
    bt = backtest_var(net, forecast, float(bt_cfg.level))
    out.metrics.update({"risk/kupiec_pvalue": bt.pof_pvalue, "risk/christoffersen_pvalue": bt.independence_pvalue,
                        "risk/conditional_coverage_pvalue": bt.conditional_coverage_pvalue,
                        "risk/var_exceedances": float(bt.exceedances), "risk/var_expected_exceedances": bt.expected,
                        "risk/var_backtest_days": float(bt.n)})
    frame = returns.select("ts", "net").with_columns(var=pl.Series(forecast), exceedance=pl.Series(bt.exceeded))
    described = (f"{bt_cfg.method} {bt_cfg.level:.0%} over {bt.n} days: {bt.exceedances} exceedances, "
                 f"{bt.expected:.1f} expected, Kupiec p {bt.pof_pvalue:.3f}, Christoffersen p "
                 f"{bt.independence_pvalue:.3f}")
    return table.to_dicts(), frame, described


def alerts(risk: DictConfig, returns: pl.DataFrame, out: PortfolioOutput) -> None:
    """Drawdown alerts of the combined book: ``alerts/drawdown_<pct>`` = 1 when crossed, tagged with the first day."""
    equity = np.cumprod(1.0 + returns["net"].to_numpy())
    drawdown = 1.0 - equity / np.maximum.accumulate(np.r_[1.0, equity])[1:]
    for level in risk.alerts.drawdown:
        crossed = np.flatnonzero(drawdown >= float(level))
        key = f"alerts/drawdown_{round(float(level) * 100)}"
        out.metrics[key] = float(crossed.size > 0)
        if crossed.size:
            out.tags[key] = str(returns["ts"][int(crossed[0])].date())


def factor_risk(cfg: DictConfig, returns: pl.DataFrame, books: Books, out: PortfolioOutput) -> list[dict[str, Any]]:
    """Factor and idiosyncratic risk of the combined book: real daily factors, or PCA factors of the traded
    symbols where the market is synthetic (``risk.factors.kind``: auto | daily | pca | none)."""
    kind = cfg.kind if cfg.kind != "auto" else ("pca" if books.synthetic else "daily")
    if kind == "none":
        return []
    net = returns.select("ts", "net")
    with located("risk.factors"):
        if kind == "daily":
            factors = daily_factors(net["ts"].min(), net["ts"].max()).select("ts", *cfg.daily)
        else:
            wide = (books.closes.sort("symbol", "ts").with_columns(r=pl.col("close").pct_change().over("symbol"))
                    .pivot(on="symbol", index="ts", values="r").sort("ts").drop_nulls())
            symbols = [c for c in wide.columns if c != "ts"]
            pca = pca_factors(wide.select(symbols).to_numpy(), min(int(cfg.pca_components), len(symbols)))
            names = [f"pc{i + 1}" for i in range(pca.returns.shape[1])]
            factors = pl.DataFrame({"ts": wide["ts"], **{n: pca.returns[:, i] for i, n in enumerate(names)}})
        model = FactorModel(min_obs=int(cfg.min_obs)).fit(net, factors)
    common = net.join(factors, on="ts").drop_nulls()
    out.metrics["risk/factor_share"] = float(model.factor_share_)
    out.metrics["risk/idiosyncratic_share"] = float(1.0 - model.factor_share_)
    rows = []
    for name, beta, share in zip(model.factor_names_, model.betas_, model.contributions_, strict=True):
        earned = float(beta * common[name].sum())  # the return the factor exposure explains
        out.metrics[f"factor/{name}_beta"] = float(beta)
        out.metrics[f"attribution/factor_{name}"] = earned
        rows.append({"factor": name, "frequency": "daily", "beta": float(beta), "share_of_variance": float(share),
                     "return_explained": earned})
    rows.append({"factor": "idiosyncratic", "frequency": "daily", "beta": None,
                 "share_of_variance": 1.0 - model.factor_share_,
                 "return_explained": float(common["net"].sum()) - sum(r["return_explained"] for r in rows)})
    if kind == "daily":
        months = net["ts"].dt.truncate("1mo").n_unique()
        if months >= int(cfg.monthly_min_obs) and net["ts"].min().year < FRENCH_END_YEAR:
            with located("risk.factors"):
                monthly = monthly_french(net, min_obs=int(cfg.monthly_min_obs))
            for name, beta, share in zip(monthly.factor_names_, monthly.betas_, monthly.contributions_, strict=True):
                out.metrics[f"factor/monthly_{name}_beta"] = float(beta)
                rows.append({"factor": name, "frequency": "monthly (Fama-French)", "beta": float(beta),
                             "share_of_variance": float(share), "return_explained": None})
    return rows


def stress_tests(cfg: DictConfig, books: Books, weights: dict[str, float], capital: float, frame: pl.DataFrame,
                 net: np.ndarray, out: PortfolioOutput) -> list[dict[str, Any]]:
    """Historical scenarios and hypothetical shocks on the last close's positions, and GARCH Monte Carlo.

    Equity positions are the books' exposures weighted by the portfolio; a
    symbol without history of its own over the scenarios (a synthetic one) is
    stressed through ``stress.proxy``. Book A's legs are revalued in full, at
    the scenario's move of the proxy and the ratio of its realized volatility
    after to before (``option_stress``; the Greek approximation and its gap
    are reported beside it).
    """
    dollars: dict[str, float] = {}
    for book, exposure in books.exposures.items():
        for symbol, fraction in exposure.items():
            dollars[symbol] = dollars.get(symbol, 0.0) + weights.get(book, 0.0) * fraction * capital
    with located("risk.stress"):
        history = build(cfg.prices)()
    spans = {s: (a.date(), b.date()) for s, a, b in history.group_by("symbol").agg(
        pl.col("ts").min(), pl.col("ts").max().alias("last")).iter_rows()}
    proxy = str(cfg.proxy)
    if proxy not in spans:
        raise ConfigError(f"proxy: {proxy!r} has no history in risk.stress.prices; it holds {sorted(spans)}. Fix: "
                          "name one of these.", field="risk.stress.proxy")
    scale_a = weights.get("book_a", 0.0) * capital / books.options_capital
    positions = {k: v for k, v in dollars.items() if v != 0.0}
    rows = []
    for name in cfg.scenarios:
        with located("risk.stress"):
            scenario = scenario_of(name)
        mapped: dict[str, float] = {}
        for symbol, value in positions.items():  # no history of its own over the scenario: the proxy's
            span = spans.get(symbol)
            key = symbol if span and span[0] < scenario.start and span[1] >= scenario.end else proxy
            mapped[key] = mapped.get(key, 0.0) + value
        equity = 0.0
        if mapped:
            with located("risk.stress"):
                equity = float(historical_stress(mapped, history, [scenario])["pnl"][0])
        spot, vol = scenario_moves(history.filter(pl.col("symbol") == proxy), scenario)
        options = _options_pnl(books, spot, vol, scale_a)
        total = (equity + options["full"]) / capital
        rows.append({"scenario": scenario.name, "equity": equity / capital, "options_full": options["full"] / capital,
                     "options_greeks": options["greeks"] / capital, "total": total})
        out.metrics[f"stress/{scenario.name}"] = total
    for name, spot, vol in SHOCKS:
        equity = float(equity_shock(positions, spot)["pnl"].sum()) if spot and positions else 0.0
        options = _options_pnl(books, spot, vol, scale_a)
        total = (equity + options["full"]) / capital
        rows.append({"scenario": name, "equity": equity / capital, "options_full": options["full"] / capital,
                     "options_greeks": options["greeks"] / capital, "total": total})
        out.metrics[f"stress/{name}"] = total
    names = [c for c in frame.columns if c != "ts"]
    if len(names) > 1:
        w = np.array([weights[n] for n in names])
        shock = correlation_shock(w, np.cov(frame.select(names).to_numpy(), rowvar=False))
        out.metrics.update({"stress/correlation_one_vol_before": shock.vol_before,
                            "stress/correlation_one_vol_after": shock.vol_after,
                            "stress/correlation_one_var_before": shock.var_before,
                            "stress/correlation_one_var_after": shock.var_after})
        rows.append({"scenario": "correlations_to_1 (daily 99% VaR)", "equity": None, "options_full": None,
                     "options_greeks": None, "total": -shock.var_after})
    mc = cfg.monte_carlo
    if mc is not None and net.size >= int(mc.min_obs):
        with located("risk.stress.monte_carlo"):
            sims = garch_scenarios(net, horizon=int(mc.horizon), n_paths=int(mc.n_paths), seed=int(mc.seed))
        q = sims.quantiles((0.01, 0.05))
        out.metrics.update({f"stress/garch_{mc.horizon}d_q01": q[0.01], f"stress/garch_{mc.horizon}d_q05": q[0.05],
                            f"stress/garch_{mc.horizon}d_worst": float(sims.horizon_returns.min())})
        rows.append({"scenario": f"garch_mc_{mc.horizon}d (1% quantile of {mc.n_paths} paths)", "equity": None,
                     "options_full": None, "options_greeks": None, "total": q[0.01]})
    return rows


def _options_pnl(books: Books, spot: float, vol: float, scale: float) -> dict[str, float]:
    """Book A's P&L at a spot move and a vol multiple, full revaluation and Greeks, scaled to the portfolio."""
    if books.legs is None or books.legs.height == 0 or scale == 0.0:
        return {"full": 0.0, "greeks": 0.0}
    shocked = option_stress(books.legs, spot_shock=spot, vol_shock=vol, hedge=books.hedge)
    return {"full": float(shocked["full_pnl"].sum()) * scale, "greeks": float(shocked["greek_pnl"].sum()) * scale}
